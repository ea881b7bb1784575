// Package scale runs mmpoison's stages on datasets of any size, streamed, and writes poisoned and filtered
// sets that other tools train on.
//
// Open reads any supported dataset (Formats: the Fashion-MNIST default, COCO, Flickr30k, PASCAL-sentences,
// Flickr-PASCAL, open_clip CSV/TSV, WebDataset shards) as a dataset.ImageSource: labels and caption counts in
// memory (a few bytes per picture), captions and pictures read when needed. Poison applies any registered
// attack in two passes (attack.Planner chooses the pairs from the compact dataset.Table, attack.Stream then
// reads the pool once in order) and Filter runs the paper's pre-training filter in two (the checker embeds
// every pair a batch at a time, keeping one distance per pair; the kept pairs are then copied). Both write,
// into a folder published whole (a temporary sibling renamed into place), WebDataset shards and/or an
// open_clip CSV (poisoning/writers: deterministic, the same seed writes byte-identical files), the poison
// manifest and export.json with the SHA-256 of every file; VerifyExport checks a folder against them. Train
// trains a model from scratch on a streamed input (models/train's feed).
//
// Bench is the scale benchmark: it generates a WebDataset of N small pairs in a temporary folder, then
// measures poisoning, one epoch of training and the filter on it (pairs per second and peak resident memory
// per stage). "mmpoison bench -scale N" runs it; evalkit/SCALE.md reports it at 50,000 and 1,000,000 pairs and
// costs the paper's COCO setup.
package scale
