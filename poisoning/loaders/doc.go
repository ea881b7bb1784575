// Package loaders reads the real image-caption datasets of Yang et al., "Data Poisoning Attacks Against
// Multimodal Encoders" (ICML 2023), and the usual CLIP training formats, into the common types of
// poisoning/dataset: COCO 2014/2017, Flickr30k and Flickr8k (Karpathy's JSON), PASCAL-sentences, the paper's
// Flickr-PASCAL combination, open_clip CSV/TSV files and WebDataset tar shards.
//
// # Streaming and collecting
//
// Every loader is a Source: its Examples method is a Go iterator (iter.Seq2[dataset.Example, error]) that reads
// and decodes one image at a time, only when the consumer asks for it, so a loop that stops early never opens the
// remaining files and a pass over a large set keeps one image in memory (Options.Workers > 1 decodes a bounded
// number ahead in parallel). Collect gathers a Source into a dataset.Dataset; with Options.ImageSize = n every
// image is resized as CLIP's test transform does (shorter side to n, bicubic, then the centre n×n square), so a
// collected set of N images takes exactly N·n·n·3 bytes of pixels. Options.MaxImages caps the count.
//
// Decoding is poisoning/imageprep's: JPEG and PNG, grayscale and CMYK converted to RGB, decompression-bomb
// guards checked from the header before decoding (Options.MaxPixels, and Options.MaxDecodeBytes for the memory a
// decode takes: 512 MiB by default, per image in flight).
//
// # Bounds
//
// Every reader of annotations is bounded by the format, and refuses what goes past with one error naming the
// file: a JSON token or array element of at most 16 MiB, a skipped JSON value nested at most 64 deep (a huge
// one under an unknown key is skipped token by token, in little memory), a CSV row of at most 1 MiB, a sentence
// line of at most 64 KiB, WebDataset text members of at most 1 MiB and image members of at most
// WebDatasetConfig.MaxMemberBytes, shard patterns of at most a million shards in all. Captions and IDs are valid
// UTF-8: a byte that is not becomes U+FFFD, as the tokenizers read it.
//
// # Errors
//
// A problem confined to one example (a corrupt, missing or oversized image; a WebDataset sample without an
// image or caption, or with a malformed json member) is an *ExampleError naming the example and its file (or
// shard and member). The iterator yields it and goes on if the consumer does; Collect stops at it unless
// Options.SkipCorrupt is set, in which case it lists it in Report.Skipped and continues. Anything else (a
// malformed annotation file, reported as an *AnnotationError with the file and the byte offset, line and column;
// a truncated tar shard; a member name with path traversal) ends the iteration. Collect always returns the
// examples it gathered before an error, so a failure late in a run loses nothing already loaded.
//
// # Formats
//
//   - COCO (LoadCOCO): root/annotations/captions_<split>.json and instances_<split>.json, images in
//     root/<split>/<file_name>, for splits such as train2014, val2014, train2017, val2017. An image's label is a
//     category drawn, with the seed, uniformly among its instance annotations (so a category annotated three
//     times is three times as likely), as the paper's official preprocessing does (random.choice over the
//     image's per-annotation category list). Images without instance annotations have no label. Classes are the
//     80 categories in id order. COCOPaperSplit draws the paper's test set: 50 images of each class except
//     "toaster" and "hair drier" (78 classes, 3,900 images); every other image is training data.
//   - Flickr30k / Flickr8k (LoadKarpathy): Karpathy's dataset_flickr30k.json (images[].filename, split,
//     sentences[].raw, optional filepath), images in one directory. No labels. Karpathy's dataset_coco.json
//     works too (its filepath field names the image folder).
//   - PASCAL-sentences (LoadPASCAL): the layout of the common download script of the UIUC page
//     (vision.cs.uiuc.edu/pascal-sentences): root/dataset/<class>/<image>.jpg and root/sentence/<class>/<stem>.txt
//     with one sentence per line (the script names them <stem>txt, without the dot; both are accepted). The 20
//     classes are the PASCAL VOC ones, labels from the folder names. FlickrPASCAL builds the paper's set:
//     training on Flickr30k's Karpathy train split (unlabelled) plus half of PASCAL (25 images per class, seeded),
//     testing on the other half (labelled).
//   - open_clip CSV/TSV (OpenCSV): a header row, image and caption columns chosen by name (open_clip's defaults
//     filepath and title), an optional label column; the separator follows the extension (.csv comma, otherwise
//     tab as open_clip's default) or CSVConfig.Separator; relative image paths are resolved against the CSV
//     file's directory; consecutive rows with the same image become one example with several captions.
//   - WebDataset (OpenWebDataset): tar shards (optionally gzip-compressed) streamed with archive/tar without
//     unpacking; members are grouped into samples by key (the member name up to the first dot of its base name),
//     with image (jpg, jpeg, png), caption (txt, or caption/captions in json) and label (cls, or label in json).
//     A member name with ".." or an absolute path is refused.
//
// PreCaption pre-processes captions as the paper's official code does before tokenising (lower case,
// punctuation deleted, at most PaperMaxWords words); the loaders keep captions as the files have them.
//
// Splits and combinations work on an Index (COCO, Karpathy, PASCAL): the annotations without the pixels, so
// a split is drawn before any image is decoded. SplitPerClass, Concat and Index.Filter build new indices.
package loaders
