// Package cuda runs the matrix-vector products of Freivalds' check of an int8 product
// (verify.Accelerator) on an NVIDIA GPU, so that a validator with a GPU checks on it.
//
// It talks to the GPU through the CUDA driver API in libcuda.so.1, which it opens at run
// time with dlopen, the way go-nvml opens NVML: the binary builds with no CUDA toolkit and
// runs where no driver is installed, and Open then says why there is no GPU. The kernels
// are PTX (freivalds.ptx, made from freivalds.cu by nvcc and embedded), which the driver
// compiles for whatever GPU it finds. Without cgo, or off Linux, Open always fails.
//
// The package only multiplies; verify draws the random vectors, keeps the transcript and
// decides the verdict, so a GPU that computes wrongly gives a wrong transcript or a failed
// check, never a quiet pass of a wrong result (and the validator checks a failure again on
// its CPU before it attests one).
package cuda
