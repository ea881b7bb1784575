package experiment_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
)

// A spec declares one experiment; Run executes it (see the quickstart notebook for the stage-by-stage API).
func ExampleDefaultSpec() {
	spec := experiment.DefaultSpec()
	spec.Rate = 0.02
	fmt.Println(spec.Source, "→", spec.Target, spec.Mode, spec.Validate())
	spec.Rate = 1.5
	fmt.Println(spec.Validate())
	// Output:
	// trouser → bag repair <nil>
	// poisoning rate φ = 1.5 is outside (0, 1)
}
