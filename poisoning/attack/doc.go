// Package attack implements the data-poisoning attacks of Yang et al., "Data Poisoning Attacks Against
// Multimodal Encoders" (ICML 2023), on dataset.PairSet training sets, and the poison manifest that records
// exactly what an attack did.
//
// Attacks I, II and III work in the linguistic modality: captions written for class-A training images are paired
// with images of class B, so that at test time text queries about A retrieve B images. SingleImage is Attack I
// (one target image x* of class B), SingleLabel is Attack II (single target label, A→B) and MultiLabel is
// Attack III (several disjoint goals A1→B1, A2→B2, … at once). They satisfy the Attack interface, share the
// Manifest type and pick their pairs with the same helpers.
//
// Backdoor is a fourth attack, in the visual modality: the patch-trigger backdoor of Carlini & Terzis (ICLR 2022).
// It adds pairs of (image of any class but the target with a small Trigger patch stamped on it, caption naming
// the target class); its manifest records the trigger, so that evaluation stamps the same patch on test images
// with ApplyTrigger or TriggerTestSet.
//
// Every attack kind registers itself (Register, in its own file) with a Definition: its Kind ("I", "II",
// "III", "backdoor"), manifest name, one-line summary, how its success is evaluated (an Evaluation), its modes,
// a constructor from the common parameters of a Spec, and its standard setting. Experiments, the defense matrix
// and the command line find attacks through Lookup and Kinds only, so a new attack is one new file here.
//
// The poisoning rate φ is always counted in pairs of the whole training set: φ = |poisoned pairs| / |all pairs|.
// Two modes create the poisoned pairs:
//
//   - Inject (the paper's threat model, the default) appends n new pairs to the N clean ones, with
//     n = round(φ·N/(1−φ)) so that n/(N+n) ≈ φ;
//   - Repair (what the official code does) re-points n = round(φ·N) existing class-A pairs to B images, keeping
//     the pair count (Attacks I to III only).
//
// Every choice (which captions, which B images) follows the seed only: the same input and seed give the same
// output, unlike the official code's unseeded shuffle. Apply never modifies its input.
package attack
