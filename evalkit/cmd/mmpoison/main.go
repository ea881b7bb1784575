package main

import (
	"fmt"
	"os"
	"strings"
)

// command is one entry of the command table: its name, its one-line summary (the usage text, the package doc
// and the command's own -h show it) and what runs it with the arguments after its name.
type command struct {
	name, summary string
	run           func(args []string) error
}

// commands is the command table, in the order usage lists it (set in init: the commands read it for their
// usage).
var commands []command

func init() {
	commands = []command{
		{"demo", "an attack on the Fashion-MNIST default (Attack II unless -attack): pre-train (cached), poison, fine-tune, evaluate, report", demo},
		{"study", "the paper's attack study (findings F1–F6): Attacks I, II, III, frozen towers and a rate sweep over seeds, resumable", studyCommand},
		{"defenses", "the defense × attack matrix: filter, clean fine-tuning, k-distance detector and CleanCLIP against the attacks over seeds, resumable", defensesCommand},
		{"bench", "speed of a training step and of embedding, per model preset and batch size, on the current backend", benchCommand},
		{"embed", "CLIP features and logits of images and captions with a safetensors checkpoint, written as .npy files", embedCommand},
		{"paper", "the paper's setup end to end: a pre-trained CLIP fine-tuned on a poisoned COCO or Flickr-PASCAL folder", paper},
		{"poison", "write a poisoned training set (any dataset, any attack) as WebDataset shards and/or an open_clip CSV with its hash-verified manifest, streamed", poisonCommand},
		{"filter", "write the pairs the pre-training filter keeps (an independent checker's distances) and its report, streamed, as poison does", filterCommand},
		{"verify", "check a folder written by poison or filter: every file's SHA-256 and the set against its poison manifest", verifyCommand},
	}
}

// summaryOf returns the summary of the named command.
func summaryOf(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.summary
		}
	}
	return ""
}

// usage is the tool's usage text, from the command table.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: mmpoison <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun \"mmpoison <command> -h\" for a command's flags.\n")
	return b.String()
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mmpoison:", err)
		os.Exit(1)
	}
}

// run runs the command args name.
func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(usageOut, usage())
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage())
}
