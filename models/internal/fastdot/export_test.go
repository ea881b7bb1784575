package fastdot

// Case is dotCase for the external tests.
type Case struct {
	Name                           string
	LhsDims, LhsBatch, LhsContract []int
	RhsDims, RhsBatch, RhsContract []int
}

func (c Case) internal() dotCase {
	return dotCase{c.Name, c.LhsDims, c.LhsBatch, c.LhsContract, c.RhsDims, c.RhsBatch, c.RhsContract}
}

// Cases returns dotCases.
func Cases() []Case {
	out := make([]Case, len(dotCases))
	for i, c := range dotCases {
		out[i] = Case{c.name, c.lhsDims, c.lhsBatch, c.lhsContract, c.rhsDims, c.rhsBatch, c.rhsContract}
	}
	return out
}

// Naive is naiveDot.
func Naive(c Case, lhs, rhs []float32) (out, scale []float64) {
	return naiveDot(c.internal(), lhs, rhs)
}

// RandomData is randomData.
var RandomData = randomData

// SetParallelMinFlops sets parallelMinFlops and returns its previous value.
func SetParallelMinFlops(n int) int {
	old := parallelMinFlops
	parallelMinFlops = n
	return old
}
