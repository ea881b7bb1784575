package fashionmnist

import (
	"fmt"
	"path/filepath"
	"sync"
)

// The official file names, as published and as Debian installs them.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// FileNames returns the four official file names: train images, train labels, t10k images, t10k labels.
func FileNames() []string {
	return []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile}
}

// Checksum holds the known MD5 digests (lower-case hex) of one data file.
type Checksum struct {
	// GzipMD5 is the MD5 of the compressed file as published (the Fashion-MNIST README's checksum).
	GzipMD5 string
	// RawMD5 is the MD5 of the decompressed IDX content. It identifies the data even when a distribution
	// recompressed the file, as Debian does.
	RawMD5 string
}

// Checksums maps a file name (TrainImagesFile, …) to its known digests.
type Checksums map[string]Checksum

// OfficialChecksums returns the digests of the official Fashion-MNIST files. The gzip MD5s are those of the
// Fashion-MNIST README; the content MD5s are those of the decompressed official files (the same as Debian's).
func OfficialChecksums() Checksums {
	return Checksums{
		TrainImagesFile: {GzipMD5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d", RawMD5: "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
		TrainLabelsFile: {GzipMD5: "25c81989df183df01b3e8a0aad5dffbe", RawMD5: "9018921c3c673c538a1fc5bad174d6f9"},
		TestImagesFile:  {GzipMD5: "bef4ecab320f06d8554ea6380940ec79", RawMD5: "8181f5470baa50b63fa0f6fddb340f0a"},
		TestLabelsFile:  {GzipMD5: "bb300cfdad3c16e7a12a480ee83cd310", RawMD5: "15d484375f8d13e6eb1aabb0c3f46965"},
	}
}

// verify accepts a file whose stored bytes match the gzip MD5 or whose decompressed content matches the content
// MD5. The error names the file and both the computed and the expected sums.
func (c Checksums) verify(path, gzipMD5, rawMD5 string) error {
	name := filepath.Base(path)
	want, ok := c[name]
	if !ok {
		return fmt.Errorf("fashionmnist: %s: no known checksum for file name %q", path, name)
	}
	if (want.GzipMD5 != "" && gzipMD5 == want.GzipMD5) || (want.RawMD5 != "" && rawMD5 == want.RawMD5) {
		return nil
	}
	return fmt.Errorf("fashionmnist: %s: checksum mismatch: file md5 %s, content md5 %s; want file md5 %s or content md5 %s",
		path, gzipMD5, rawMD5, want.GzipMD5, want.RawMD5)
}

// Set is one official Fashion-MNIST set: images with their labels (0–9, see ShortNames).
type Set struct {
	Images *Images
	Labels []uint8
}

// Raw holds the two official sets as read from disk.
type Raw struct {
	// Train is the official training set (60,000 images), Test the official t10k set (10,000 images).
	Train, Test Set
}

// ReadDir reads the four official files from dir, concurrently. It checks that images and labels agree in count
// and that labels are below NumClasses. If sums is not nil, every file must match its checksum (see Checksums);
// a nil sums skips the check.
func ReadDir(dir string, sums Checksums) (*Raw, error) {
	names := FileNames()
	files := make([]*idxFile, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			path := filepath.Join(dir, name)
			magic := uint32(magicImages)
			if i%2 == 1 {
				magic = magicLabels
			}
			f, err := readIDXFile(path, magic)
			if err == nil && sums != nil {
				err = sums.verify(path, f.gzipMD5, f.rawMD5)
			}
			files[i], errs[i] = f, err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	raw := &Raw{}
	for k, set := range []*Set{&raw.Train, &raw.Test} {
		im, lb := files[2*k], files[2*k+1]
		set.Images = &Images{Count: im.dims[0], Rows: im.dims[1], Cols: im.dims[2], Pix: im.data}
		set.Labels = lb.data
		if len(set.Labels) != set.Images.Count {
			return nil, fmt.Errorf("fashionmnist: %s holds %d images but %s holds %d labels",
				filepath.Join(dir, names[2*k]), set.Images.Count, filepath.Join(dir, names[2*k+1]), len(set.Labels))
		}
		for i, l := range set.Labels {
			if int(l) >= NumClasses {
				return nil, fmt.Errorf("fashionmnist: %s: label %d of item %d is not below %d",
					filepath.Join(dir, names[2*k+1]), l, i, NumClasses)
			}
		}
	}
	return raw, nil
}
