package main

import (
	"testing"

	"github.com/mmpoison/mmpoison/evalkit/internal/testenv"
)

// TestMain gives the command's tests a fresh model cache and makes their skips visible.
func TestMain(m *testing.M) { testenv.Main(m) }
