package fashionmnist

import (
	"os"
	"testing"

	"github.com/mmpoison/mmpoison/internal/testskip"
)

// TestMain makes the tests that skip for want of an optional resource say so (internal/testskip).
func TestMain(m *testing.M) { os.Exit(testskip.Run(m)) }
