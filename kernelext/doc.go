// Package kernelext displays tables, figures, image grids and training
// progress in a way that works both inline in a GoNB (Go Jupyter kernel)
// notebook and outside one, so that the command-line tools, the tests and the
// notebooks share a single display layer.
//
// Inside a notebook (detected with gonbui.IsNotebook, see [IsNotebook]) the
// Show functions send HTML, Markdown or SVG to the cell output through
// github.com/janpfeifer/gonb/gonbui, and [Progress] updates one output block
// in place. Outside a notebook they write plain text to a writer (os.Stdout
// unless changed with [SetOutput]). Plain-text output never contains terminal
// control characters, so it can be redirected to log files.
//
// The package writes no file of its own accord and imports no other package
// of mmpoison: figures and image grids are saved only when a caller has set an
// output directory together with the function that writes files
// ([SetOutputDir]; mmpoison passes poisoning/atomicfile.WriteFile).
//
// The renderers are also available on their own: [Table.Text],
// [Table.Markdown] and [Table.HTML]; [ImageGrid.PNG] and [ImageGrid.HTML];
// [Progress.Line] and [Progress.HTML]; [Figure.HTML] and [Figure.Files].
//
// The package-level settings (output writer, directory and write function)
// are guarded by a mutex and may be changed from any goroutine.
package kernelext
