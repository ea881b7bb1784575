// Package plots draws the paper figures of mmpoison (MinRank histograms,
// Hit@K curves, grouped bar charts of utility Recall@K, loss curves) with
// gonum.org/v1/plot, in one consistent style ([DefaultStyle]: sans-serif
// Liberation fonts, colour-blind-safe Okabe–Ito palette, light grid, 1.5 pt
// lines).
//
// Every function returns a [kernelext.Figure] holding the same figure as
// vector SVG and PDF and as a PNG bitmap, ready for [kernelext.ShowFigure]
// (inline in a GoNB notebook, saved to the output directory set with
// kernelext.SetOutputDir) or [Save] (files written atomically). Figure names
// are derived from the titles and can be overridden with [WithName].
//
// NaN and infinite values are skipped (a point, a bar or an error bar is
// left out) rather than failing the whole figure.
package plots
