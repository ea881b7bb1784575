// Package fashionmnist provides Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) as mmpoison's default,
// always-available image-caption dataset.
//
// Fashion-MNIST has 70,000 grayscale 28×28 product photos in ten classes (60,000 in the official train file,
// 10,000 in the official t10k file) but no captions. This package
//
//   - reads the official gzip-compressed IDX files (ReadImages, ReadLabels, ReadDir), validating magic numbers,
//     dimensions and sizes and verifying the files against the official checksums;
//   - finds them (Source.Locate): first a configured directory, then /usr/share/datasets/fashion-mnist (Debian's
//     dataset-fashion-mnist package), then a per-user cache directory that it can fill by downloading the official
//     files (Fetch);
//   - writes five varied, deterministic captions per image (Captioner) from sentence templates, class synonyms,
//     attribute words measured on the pixels (tone, texture, size) and distractor phrases;
//   - cuts seeded, class-stratified splits (Load): a clean pre-training pool and a fine-tuning train split from the
//     official train file (disjoint), and a test split with a fixed number of images per class from the official
//     t10k file.
//
// Dataset.Classes of every split holds the short lower-case class names (ShortNames: "tshirt", "trouser", …,
// "boot"), so dataset.ClassIndex and the attacks accept them directly; ClassIndex and Canonical in this package
// also accept the official names ("T-shirt/top", "Ankle boot", …).
//
// Checksums: Debian recompresses the files, so their gzip bytes differ from the official downloads while the
// decompressed IDX content is identical. A file is therefore accepted when either the MD5 of its compressed
// bytes matches the official gzip MD5 or the MD5 of its decompressed content matches the official content MD5.
package fashionmnist
