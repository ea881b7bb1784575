// Package metrics implements the retrieval metrics used to evaluate data
// poisoning attacks against CLIP-style image-text encoders (Yang et al.,
// "Data Poisoning Attacks Against Multimodal Encoders", ICML 2023).
//
// Everything here is pure Go over float32 embeddings; nothing depends on a
// machine-learning framework, so the functions can be used on embeddings
// produced by any model and in tests with hand-built vectors.
//
// The definitions follow the paper (see the "Metrics" section of the project
// digest):
//
//   - The gallery is every test image; the queries are the test captions of the
//     class-A test images. Similarity is the cosine similarity
//     ([CosineSimilarity]).
//   - For a query q, minrank(q) is the smallest 0-based rank of any target image
//     (Attack II/III: all class-B test images; Attack I: the single target image
//     x*) in q's ranking by similarity, best first ([MinRank]). Ties are broken
//     conservatively: a target tied with non-targets is ranked after all of them.
//   - Hit@K is the fraction of queries with minrank(q) < K, for K in
//     [DefaultKs] = {1, 5, 10, 20, 30, 50} ([HitAtK]); MinRank is the mean of
//     minrank(q), reported together with its median and distribution
//     ([RankStats], [SummarizeRanks]). [EvaluateAttack] computes all of them.
//   - Utility is measured by image-to-text (TR) and text-to-image (IR)
//     Recall@K ([Recall]): an image is a hit when any of its captions is in its
//     top K, a caption is a hit when its own image is in its top K.
//
// All result structs carry snake_case JSON tags and marshal to JSON without
// NaN or infinite numbers: undefined values (for example the mean of an empty
// set) are written as null and read back as NaN.
package metrics
