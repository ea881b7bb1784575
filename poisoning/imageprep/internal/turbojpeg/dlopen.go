//go:build cgo && unix

package turbojpeg

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The TurboJPEG API's functions, declared here (its header is not needed to build): handles are opaque.
typedef void *tjhandle;
typedef tjhandle (*tj_init_fn)(void);
typedef int (*tj_destroy_fn)(tjhandle);
typedef int (*tj_header_fn)(tjhandle, const unsigned char *, unsigned long, int *, int *, int *, int *);
typedef int (*tj_decompress_fn)(tjhandle, const unsigned char *, unsigned long, unsigned char *, int, int, int,
	int, int);
typedef int (*tj_compress_fn)(tjhandle, const unsigned char *, int, int, int, int, unsigned char **,
	unsigned long *, int, int, int);
typedef void (*tj_free_fn)(unsigned char *);
typedef char *(*tj_errstr_fn)(tjhandle);

// TurboJPEG's constants (turbojpeg.h of libjpeg-turbo 2.x, unchanged in 3.x).
enum {
	TJPF_RGB = 0, TJPF_GRAY = 6,
	TJSAMP_444 = 0, TJSAMP_422 = 1, TJSAMP_420 = 2, TJSAMP_GRAY = 3, TJSAMP_440 = 4,
	TJCS_YCbCr = 1, TJCS_GRAY = 2,
	TJFLAG_ACCURATEDCT = 4096, TJFLAG_STOPONWARNING = 8192, TJFLAG_PROGRESSIVE = 16384, TJFLAG_LIMITSCANS = 32768,
};

static struct {
	tj_init_fn init_decompress, init_compress;
	tj_destroy_fn destroy;
	tj_header_fn header;
	tj_decompress_fn decompress;
	tj_compress_fn compress;
	tj_free_fn free;
	tj_errstr_fn errstr;
} tj;

// tj_load opens the library and looks up its functions; it returns NULL or what went wrong.
static const char *tj_load(const char *name) {
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) return dlerror();
	const char *names[] = {"tjInitDecompress", "tjInitCompress", "tjDestroy", "tjDecompressHeader3",
		"tjDecompress2", "tjCompress2", "tjFree", "tjGetErrorStr2"};
	void *fns[8];
	for (int i = 0; i < 8; i++) {
		fns[i] = dlsym(lib, names[i]);
		if (fns[i] == NULL) {
			static char msg[100];
			snprintf(msg, sizeof msg, "no function %s in the library", names[i]);
			dlclose(lib);
			return msg;
		}
	}
	tj.init_decompress = (tj_init_fn)fns[0];
	tj.init_compress = (tj_init_fn)fns[1];
	tj.destroy = (tj_destroy_fn)fns[2];
	tj.header = (tj_header_fn)fns[3];
	tj.decompress = (tj_decompress_fn)fns[4];
	tj.compress = (tj_compress_fn)fns[5];
	tj.free = (tj_free_fn)fns[6];
	tj.errstr = (tj_errstr_fn)fns[7];
	return NULL;
}

static void tj_error(tjhandle h, char *err, int n) {
	const char *msg = tj.errstr(h);
	strncpy(err, msg ? msg : "unknown error", n - 1);
	err[n - 1] = 0;
}

// tj_decode decodes src into dst (w·h RGB or gray bytes) with ISLOW and fancy upsampling, stopping at any
// warning. It returns 0, 1 when the header differs from w, h and the colour space (YCbCr in 4:4:4, 4:2:2,
// 4:2:0 or 4:4:0 for RGB, grayscale for gray), or -1 with the library's message in err.
static int tj_decode(const unsigned char *src, unsigned long n, unsigned char *dst, int w, int h, int gray,
		char *err, int errlen) {
	tjhandle hd = tj.init_decompress();
	if (hd == NULL) {
		strncpy(err, "tjInitDecompress failed", errlen - 1);
		return -1;
	}
	int jw = -1, jh = -1, samp = -1, cs = -1, ret = 0; // left as they are for a tables-only stream
	if (tj.header(hd, src, n, &jw, &jh, &samp, &cs) != 0) {
		tj_error(hd, err, errlen);
		ret = -1;
	} else if (jw != w || jh != h) {
		ret = 1;
	} else if (gray ? cs != TJCS_GRAY : cs != TJCS_YCbCr || (samp != TJSAMP_444 && samp != TJSAMP_422 &&
			samp != TJSAMP_420 && samp != TJSAMP_440)) {
		ret = 1;
	} else if (tj.decompress(hd, src, n, dst, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB,
			TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
		tj_error(hd, err, errlen);
		ret = -1;
	}
	tj.destroy(hd);
	return ret;
}

// tj_encode compresses RGB or gray pixels; *out (freed with tj.free) receives the file.
static int tj_encode(const unsigned char *src, int w, int h, int gray, int samp, int quality, int progressive,
		unsigned char **out, unsigned long *size, char *err, int errlen) {
	tjhandle hd = tj.init_compress();
	if (hd == NULL) {
		strncpy(err, "tjInitCompress failed", errlen - 1);
		return -1;
	}
	int flags = TJFLAG_ACCURATEDCT | (progressive ? TJFLAG_PROGRESSIVE : 0);
	int ret = tj.compress(hd, src, w, 0, h, gray ? TJPF_GRAY : TJPF_RGB, out, size, samp, quality, flags);
	if (ret != 0) tj_error(hd, err, errlen);
	tj.destroy(hd);
	return ret;
}

static void tj_free(unsigned char *p) { tj.free(p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

const errLen = 200

// Load loads the library once (trying Names in order) and returns nil, or why it cannot be used.
var Load = sync.OnceValue(func() error {
	var msgs []string
	for _, name := range Names {
		err := load(name)
		if err == nil {
			loaded = name
			return nil
		}
		msgs = append(msgs, err.Error())
	}
	return errors.New("turbojpeg: cannot load libjpeg-turbo's TurboJPEG library: " + strings.Join(msgs, "; "))
})

// load opens the library file name (found as dlopen finds it) and looks up the functions Decode and Encode
// call. A failed load changes nothing.
func load(name string) error {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if msg := C.tj_load(cname); msg != nil {
		return fmt.Errorf("%s: %s", name, C.GoString(msg))
	}
	return nil
}

// loaded is the name of the library Load loaded.
var loaded string

// Library returns the name of the library Load loaded, or "" before a successful Load.
func Library() string { return loaded }

// Decode decodes the JPEG data into dst, width·height·3 bytes of RGB (width·height bytes of grayscale if
// gray), with libjpeg's accurate inverse DCT and fancy upsampling, as Pillow does. It returns ErrUnsupported,
// having decoded nothing, when the header says another size, or a colour space other than YCbCr with 4:4:4,
// 4:2:2, 4:2:0 or 4:4:0 chroma (grayscale if gray); Load's error where the library cannot be loaded; and an
// error for any error or warning of the library (dst then holds what it decoded).
func Decode(data, dst []byte, width, height int, gray bool) error {
	if err := Load(); err != nil {
		return err
	}
	if err := checkDecode(data, dst, width, height, gray); err != nil {
		return err
	}
	var msg [errLen]C.char
	g := C.int(0)
	if gray {
		g = 1
	}
	switch C.tj_decode((*C.uchar)(unsafe.Pointer(&data[0])), C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&dst[0])),
		C.int(width), C.int(height), g, &msg[0], errLen) {
	case 0:
		return nil
	case 1:
		return ErrUnsupported
	}
	return errors.New("turbojpeg: " + C.GoString(&msg[0]))
}

// Encode compresses width×height RGB pixels (grayscale if gray, which needs SGray) into a JPEG with libjpeg's
// accurate DCT, the given chroma subsampling and quality (1 to 100), baseline or progressive; Load's error where
// the library cannot be loaded. Tests use it to make files of every kind.
func Encode(pix []byte, width, height int, gray bool, s Subsampling, quality int, progressive bool) ([]byte, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	if err := checkDecode([]byte{0}, pix, width, height, gray); err != nil {
		return nil, err
	}
	var out *C.uchar
	var size C.ulong
	var msg [errLen]C.char
	g, p := C.int(0), C.int(0)
	if gray {
		g = 1
	}
	if progressive {
		p = 1
	}
	if C.tj_encode((*C.uchar)(unsafe.Pointer(&pix[0])), C.int(width), C.int(height), g, C.int(s), C.int(quality), p,
		&out, &size, &msg[0], errLen) != 0 {
		return nil, errors.New("turbojpeg: " + C.GoString(&msg[0]))
	}
	defer C.tj_free(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
