// Package layers has no code of its own: its test checks that mmpoison's imports flow one way, as the design's
// layer table says (data → poison → train → evaluate → show, with the display package apart):
//
//	display   kernelext                                            imports no package of mmpoison
//	1 data    poisoning/atomicfile, dataset, fashionmnist, imageprep, loaders, vecmath, writers
//	2 poison  poisoning/attack, poisoning/defense                  no figures, tables or display
//	3 train   models/...
//	4 evaluate evalkit/... except the show layer
//	5 show    evalkit/plots, evalkit/report, evalkit/cmd/...
//
// A package imports only packages of its own layer or below; kernelext may be imported from the train layer
// up. Tests may use higher layers as fixtures (poisoning/defense's tests build a models/tokenizer), except that
// kernelext's tests import no other package of mmpoison and the tests of poisoning and models import nothing
// from evalkit.
package layers
