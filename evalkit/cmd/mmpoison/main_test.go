package main

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// captureUsage sends usage texts to a buffer for the rest of the test.
func captureUsage(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := usageOut
	usageOut = &buf
	t.Cleanup(func() { usageOut = old })
	return &buf
}

// The package doc lists exactly the table's commands, in its order, with their summaries.
func TestDocListsTheCommandTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case line == "// The commands:":
			in = true
		case in && line == "//" && len(doc) > 0:
			in = false
		case in && strings.HasPrefix(line, "//\t"):
			doc = append(doc, strings.TrimPrefix(line, "//\t"))
		}
	}
	var table []string
	for _, c := range commands {
		table = append(table, c.name+strings.Repeat(" ", 10-len(c.name))+c.summary)
	}
	if !reflect.DeepEqual(doc, table) {
		t.Errorf("doc.go lists\n%s\nthe table has\n%s", strings.Join(doc, "\n"), strings.Join(table, "\n"))
	}
}

// -h on the tool and on every command prints its usage and succeeds; the usage lists every command.
func TestHelp(t *testing.T) {
	out := captureUsage(t)
	if err := run([]string{"-h"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), "  "+c.name+" ") || !strings.Contains(out.String(), c.summary) {
			t.Errorf("usage lacks %s:\n%s", c.name, out)
		}
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			out.Reset()
			if err := run([]string{c.name, "-h"}); err != nil {
				t.Fatalf("%s -h: %v", c.name, err)
			}
			if !strings.Contains(out.String(), "usage: mmpoison "+c.name) || !strings.Contains(out.String(), "-") {
				t.Errorf("%s -h printed:\n%s", c.name, out)
			}
		})
	}
	if err := run([]string{"conjure"}); err == nil || !strings.Contains(err.Error(), `unknown command "conjure"`) {
		t.Errorf("unknown command: %v", err)
	}
}

// A flag name means the same thing in every command that has it: the same kind of value and the same help, up
// to a last parenthesised detail (what an output folder holds, a command's default).
func TestFlagsMeanTheSameEverywhere(t *testing.T) {
	captureUsage(t)
	flagSets = map[string]*flag.FlagSet{}
	defer func() { flagSets = nil }()
	for _, c := range commands {
		if err := run([]string{c.name, "-h"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(flagSets) != len(commands) {
		t.Fatalf("%d flag sets for %d commands", len(flagSets), len(commands))
	}
	detail := regexp.MustCompile(` \([^()]*\)$`)
	type meaning struct {
		value reflect.Type
		help  string
	}
	seen := map[string]meaning{}
	where := map[string]string{}
	for name, fs := range flagSets {
		fs.VisitAll(func(f *flag.Flag) {
			m := meaning{reflect.TypeOf(f.Value), detail.ReplaceAllString(f.Usage, "")}
			if prev, ok := seen[f.Name]; ok && prev != m {
				t.Errorf("-%s means %v %q in %s and %v %q in %s", f.Name, prev.value, prev.help, where[f.Name], m.value, m.help, name)
			}
			seen[f.Name], where[f.Name] = m, name
		})
	}
	for _, common := range []string{"seed", "seeds", "out", "quiet", "quick", "preset", "batch", "devices"} {
		if _, ok := seen[common]; !ok {
			t.Errorf("no command has -%s", common)
		}
	}
	probe := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.Int("int", 0, "")
	probe.Int64("int64", 0, "")
	for name, want := range map[string]reflect.Type{"batch": reflect.TypeOf(probe.Lookup("int").Value),
		"seed": reflect.TypeOf(probe.Lookup("int64").Value), "seeds": reflect.TypeOf(&numbers[int64]{}),
		"batches": reflect.TypeOf(&numbers[int]{})} {
		if got := seen[name].value; got != want {
			t.Errorf("-%s holds %v, want %v", name, got, want)
		}
	}
}

// TestDevicesFlag: -devices reaches the spec of every training (left out: one device, the spec unchanged) and
// is validated against the batch size.
func TestDevicesFlag(t *testing.T) {
	for _, c := range []struct {
		args    []string
		devices int
		err     string
	}{
		{[]string{"-quick"}, 0, ""},
		{[]string{"-quick", "-devices", "2"}, 2, ""},
		{[]string{"-quick", "-devices", "3"}, 3, "batch size 64 cannot be split over 3 devices"},
	} {
		spec, _, _, err := demoSpec(c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("demo %v: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil || spec.Devices != c.devices {
			t.Errorf("demo %v: devices %d, error %v; want %d", c.args, spec.Devices, err, c.devices)
		}
	}
}

func TestListFlags(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	l := listFlag(fs, "l", []string{"a"}, "")
	seeds := seedsFlag(fs, []int64{1})
	batches := numbersFlag(fs, "b", []int{2}, parseBatch, "")
	rates := numbersFlag(fs, "r", nil, parseRate, "")
	if err := fs.Parse([]string{"-l", " x, ,y ", "-seeds", "4,-5", "-b", "8,16", "-r", "0.01,0.5"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(*l), []string{"x", "y"}) || !reflect.DeepEqual(*seeds, []int64{4, -5}) ||
		!reflect.DeepEqual(*batches, []int{8, 16}) || !reflect.DeepEqual(*rates, []float64{0.01, 0.5}) {
		t.Errorf("parsed %v %v %v %v", *l, *seeds, *batches, *rates)
	}
	if !wasSet(fs, "seeds") || wasSet(fs, "nothing") {
		t.Error("wasSet")
	}
	for _, bad := range [][]string{{"-seeds", "1.5"}, {"-b", "1"}, {"-b", "x"}, {"-r", "2"}, {"-r", "NaN"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(bytes.Buffer))
		seedsFlag(fs, nil)
		numbersFlag(fs, "b", nil, parseBatch, "")
		numbersFlag(fs, "r", nil, parseRate, "")
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
