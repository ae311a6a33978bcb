// Package cuda runs OmniSync's GPU work on an NVIDIA GPU: the matrix-vector products of
// Freivalds' check of an int8 product, so that a validator with a GPU checks on it
// (verify.Accelerator, freivalds.cu); a node's exact int8 product for matmul-int8 jobs and
// capacity challenges (MatMulInt8, gemm.cu); and the short bf16 tensor-core benchmark a
// node confirms its declared TFLOPS with (MeasureBF16, mma.cu).
//
// It talks to the GPU through the CUDA driver API in libcuda.so.1, which it opens at run
// time with dlopen, the way go-nvml opens NVML: the binary builds with no CUDA toolkit and
// runs where no driver is installed, and Open then says why there is no GPU. The kernels
// are PTX (the .ptx files, made from the .cu files by nvcc and embedded), which the driver
// compiles for whatever GPU it finds. Without cgo, or off Linux, Open always fails.
//
// For a validator it only multiplies: verify draws the random vectors, keeps the
// transcript and decides the verdict, so a GPU that computes wrongly gives a wrong
// transcript or a failed check, never a quiet pass of a wrong result (and the validator
// checks a failure again on its CPU before it attests one). A node's product is checked
// on the GPU, with a random vector of this process's, before MatMulInt8 returns it.
package cuda
