// This file lets fastdot.go declare a function without a body (getBufferForShape, pulled from simplego with
// //go:linkname): the Go compiler only accepts such declarations in packages that have assembly.
