package fashionmnist

import (
	"fmt"
	"slices"
	"strings"
)

// NumClasses is the number of Fashion-MNIST classes.
const NumClasses = 10

// officialNames are the class names of the Fashion-MNIST README, indexed by label.
var officialNames = [NumClasses]string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// shortNames are lower-case one-word names for command lines and attack goals, indexed by label.
var shortNames = [NumClasses]string{
	"tshirt", "trouser", "pullover", "dress", "coat",
	"sandal", "shirt", "sneaker", "bag", "boot",
}

// OfficialNames returns the class names as published with Fashion-MNIST ("T-shirt/top", …, "Ankle boot"),
// indexed by label. The slice is a fresh copy.
func OfficialNames() []string { return slices.Clone(officialNames[:]) }

// ShortNames returns the short lower-case class names ("tshirt", "trouser", "pullover", "dress", "coat",
// "sandal", "shirt", "sneaker", "bag", "boot"), indexed by label. These are the Dataset.Classes of every split
// Load returns. The slice is a fresh copy.
func ShortNames() []string { return slices.Clone(shortNames[:]) }

// ClassIndex returns the label of a class given by its short name ("boot") or its official name ("Ankle boot"),
// case-insensitively and ignoring surrounding spaces. An unknown name gives an error that lists the valid names.
func ClassIndex(name string) (int, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	for i := range NumClasses {
		if want == shortNames[i] || want == strings.ToLower(officialNames[i]) {
			return i, nil
		}
	}
	valid := make([]string, NumClasses)
	for i := range NumClasses {
		valid[i] = fmt.Sprintf("%q (%s)", shortNames[i], officialNames[i])
	}
	return -1, fmt.Errorf("fashionmnist: unknown class name %q: valid classes are %s", name, strings.Join(valid, ", "))
}

// Canonical returns the short name of a class given by either its short or its official name, e.g. "Ankle boot" →
// "boot". Use it to turn user input into the names Dataset.Classes holds.
func Canonical(name string) (string, error) {
	i, err := ClassIndex(name)
	if err != nil {
		return "", err
	}
	return shortNames[i], nil
}
