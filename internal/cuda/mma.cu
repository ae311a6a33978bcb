// A bf16 tensor-core micro-benchmark: how many floating-point operations a second the GPU's
// tensor cores sustain, so that a node confirms the TFLOPS it declares by measuring them
// (internal/node/hw). Each warp runs chains independent mma.sync m16n8k16 products
// (bf16 inputs, f32 accumulators) iters times on values held in registers: no memory
// traffic, only the tensor cores. Each mma is 2*16*8*16 = 4096 operations.
//
// mma.sync is the instruction Ampere introduced; Hopper's fastest path (wgmma) is not
// used, so on an H100 or H200 this measures less than the published peak.
//
// mma.ptx is this file compiled by NVIDIA's compiler for compute capability 8.0 and later
// (bf16 mma needs it):
//   nvcc -ptx -arch=compute_80 -o mma.ptx mma.cu
// Regenerate it after any change here; internal/cuda embeds it.

#define CHAINS 8

extern "C" __global__ void omni_mma_bf16(float *out, int iters) {
  // Operands: bf16 pairs near 1.0 that differ by thread, so nothing folds to a constant.
  const unsigned t = threadIdx.x + blockIdx.x * blockDim.x;
  const unsigned a0 = 0x3f803f80u ^ (t & 7u), a1 = a0 ^ 1u, a2 = a0 ^ 2u, a3 = a0 ^ 3u;
  const unsigned b0 = 0x3f803f80u ^ ((t >> 3) & 7u), b1 = b0 ^ 1u;
  float d[CHAINS][4];
#pragma unroll
  for (int c = 0; c < CHAINS; c++) d[c][0] = d[c][1] = d[c][2] = d[c][3] = 0.0f;
  for (int i = 0; i < iters; i++) {
#pragma unroll
    for (int c = 0; c < CHAINS; c++) {
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
          : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3])
          : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    }
  }
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < CHAINS; c++) s += d[c][0] + d[c][1] + d[c][2] + d[c][3];
  out[t] = s;  // kept, so the products are not optimised away
}
