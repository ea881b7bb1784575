package notebook_test

import (
	"fmt"

	"github.com/mmpoison/mmpoison/evalkit/experiment"
	"github.com/mmpoison/mmpoison/evalkit/notebook"
	"github.com/mmpoison/mmpoison/poisoning/attack"
)

// A notebook declares its settings once; every cell then starts from them (nb.Spec(), nb.Data(), nb.Run()).
// Flipping Full switches every cell to the demo's size and three seeds.
func Example() {
	nb := notebook.Settings{Full: false, Edit: func(s *experiment.Spec) { s.Attack.Kind = attack.KindSingleImage }}
	fmt.Println(nb)
	fmt.Println("attack", nb.Spec().Attack.Kind, "seeds", nb.Seeds())

	nb.Full = true
	fmt.Println(nb)
	// Output:
	// quick size (3,000 pre-training images), one seed (42)
	// attack I seeds [42]
	// full size (10,000 pre-training images), 3 seeds (42, 43, 44)
}
