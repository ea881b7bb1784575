package layers

import (
	"os"
	"testing"

	"github.com/mmpoison/mmpoison/poisoning/testskip"
)

// TestMain makes the tests that skip for want of an optional resource say so (poisoning/testskip).
func TestMain(m *testing.M) { os.Exit(testskip.Run(m)) }
