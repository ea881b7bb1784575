// Command mmpoison runs mmpoison's experiments from the command line.
//
// Usage:
//
//	mmpoison <command> [flags]
//
// The commands:
//
//	demo      an attack on the Fashion-MNIST default (Attack II unless -attack): pre-train (cached), poison, fine-tune, evaluate, report
//	study     the paper's attack study (findings F1–F6): Attacks I, II, III, frozen towers and a rate sweep over seeds, resumable
//	defenses  the defense × attack matrix: filter, clean fine-tuning, k-distance detector and CleanCLIP against the attacks over seeds, resumable
//	bench     speed of a training step and of embedding, per model preset and batch size, on the current backend
//	embed     CLIP features and logits of images and captions with a safetensors checkpoint, written as .npy files
//	paper     the paper's setup end to end: a pre-trained CLIP fine-tuned on a poisoned COCO or Flickr-PASCAL folder
//	poison    write a poisoned training set (any dataset, any attack) as WebDataset shards and/or an open_clip CSV with its hash-verified manifest, streamed
//	filter    write the pairs the pre-training filter keeps (an independent checker's distances) and its report, streamed, as poison does
//	verify    check a folder written by poison or filter: every file's SHA-256 and the set against its poison manifest
//
// Run "mmpoison <command> -h" for a command's flags. The same flag means the same thing in every command that
// has it: -seed one seed, -seeds a list of seeds, -out the output folder, -quiet no training progress, -quick
// the smaller experiment.QuickSpec sizes, -preset the CLIP model preset, -batch one batch size. Trained models
// and finished runs are kept in the cache ($MMPOISON_CACHE, or mmpoison in the user cache directory).
//
// Data: demo, study and defenses read Fashion-MNIST's four official files from -data-dir when given, else from
// /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist package), else from fashion-mnist in the
// user cache directory (~/.cache/mmpoison/fashion-mnist), downloading the official files there, checked against
// their MD5 sums, when they are missing; without the package or the network the error lists the files' URLs and
// sums.
package main
