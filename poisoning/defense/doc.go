// Package defense implements the model-independent core of the defenses of Yang et al., "Data Poisoning Attacks
// Against Multimodal Encoders" (ICML 2023), starting with the pre-training filter.
//
// The pre-training filter embeds every training pair with an independent, clean model (CLIP ViT-B/16 in the
// paper) and drops the pairs whose cosine distance 1 − cos(image, caption) exceeds a threshold γ: poisoned pairs
// match their images badly (about 0.85 in the paper) compared with clean ones (about 0.75), so γ = 0.8 removes
// most of the poison and few clean pairs. This package does everything after the embedding, which the caller
// does with whatever model it has:
//
//   - [PairDistances] turns the image and caption embeddings of the pairs into cosine distances;
//   - [ChooseGamma] picks γ from a [Threshold]: a fixed value, a quantile of the distances, or the best cut on a
//     small [LabelledSample] of pairs known to be clean or poisoned;
//   - [Filter] drops the pairs above γ and returns a [FilterReport]: what was removed and, from the pairs'
//     Poisoned flags, how much of the poison it caught (precision, recall, clean pairs lost);
//     [ReportFromManifest] computes the same report from an attack's poison manifest alone.
//
// Beyond the paper, two more defenses start here, one on each side of training:
//
//   - [KDistanceScores] is an embedding-space detector (data side, before training): from the same checker
//     embeddings, it scores each pair by how badly its caption agrees with the captions of the most similar
//     other images, which finds coordinated poison that plain k-distance or LOF outlier scores miss; its scores
//     go through [ChooseGamma], [Filter] and [ReportFromManifest] like the filter's distances;
//   - [EDA] and [TokenEDA] make the caption views of CleanCLIP's in-modality self-supervised loss (training
//     side, a repair after the attack; the loss itself is models/train's SelfSupervised).
//
// Figures and tables of these results live with the others: evalkit/plots' DistanceHistogram draws the clean
// and poisoned distributions of the distances or scores with γ, and evalkit/report's FilterTable shows a
// FilterReport.
//
// Conventions: a pair is dropped when its distance is greater than γ (a pair exactly at γ is kept). A NaN
// distance (an embedding with NaN or infinite components) cannot vouch for its pair, so [Filter] drops it and
// counts it in FilterReport.Unscored; [ChooseGamma] ignores NaN distances for quantiles and rejects them in a
// labelled sample. Ratios that are undefined (precision when nothing was dropped, recall when there is no
// poison) are nil in the report, hence null in JSON and "n/a" in tables, never NaN.
//
// Nothing here modifies its inputs.
package defense
