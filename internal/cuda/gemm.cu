// C = A·B for int8 matrices with exact int32 sums, the matmul-int8 kernel of a node's
// native runtime on an NVIDIA GPU (internal/runtime). A is m×k and B k×n, both row-major;
// C is m×n row-major.
//
// Each block of 256 threads computes a 64×64 tile of C, each thread a 4×4 part of it,
// walking k 32 at a time: the block packs its 64×32 slice of A and its 32×64 slice of B
// (transposed, so that each B column's four consecutive k values share one int) into shared
// memory, and each thread multiplies them four k values at a time with __dp4a, the int8
// dot product of compute capability 6.1 and later. Entries outside the matrices are packed
// as zeros. Sums stay within int32 for k up to tensor.MaxInner, as on the CPU, so the
// result is exactly tensor.MatMulInt8's. (The tensor cores' int8 path is faster; this
// kernel is the simple exact one.)
//
// gemm.ptx is this file compiled by NVIDIA's compiler:
//   nvcc -ptx -arch=compute_75 -o gemm.ptx gemm.cu
// Regenerate it after any change here; internal/cuda embeds it.

#define TM 64
#define TN 64
#define TK 32
#define K4 (TK / 4)

extern "C" __global__ void omni_gemm_i8(const signed char *__restrict__ a, const signed char *__restrict__ b,
                                        int *__restrict__ c, int m, int n, int k) {
  __shared__ int as[TM][K4 + 1];  // +1: rows fall in different banks
  __shared__ int bs[TN][K4 + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const long long row0 = (long long)blockIdx.y * TM, col0 = (long long)blockIdx.x * TN;
  int acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) acc[i][j] = 0;

  for (int k0 = 0; k0 < k; k0 += TK) {
    for (int t = threadIdx.x; t < TM * K4; t += blockDim.x) {
      const int r = t / K4, q = t % K4;
      const long long gr = row0 + r;
      unsigned v = 0;
#pragma unroll
      for (int s = 0; s < 4; s++) {
        const int kk = k0 + 4 * q + s;
        const unsigned char x = (gr < m && kk < k) ? (unsigned char)a[gr * k + kk] : 0;
        v |= (unsigned)x << (8 * s);
      }
      as[r][q] = (int)v;
    }
    for (int t = threadIdx.x; t < TN * K4; t += blockDim.x) {
      const int col = t % TN, q = t / TN;  // neighbouring threads read neighbouring columns
      const long long gc = col0 + col;
      unsigned v = 0;
#pragma unroll
      for (int s = 0; s < 4; s++) {
        const int kk = k0 + 4 * q + s;
        const unsigned char x = (gc < n && kk < k) ? (unsigned char)b[(long long)kk * n + gc] : 0;
        v |= (unsigned)x << (8 * s);
      }
      bs[col][q] = (int)v;
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < K4; q++) {
      int av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; i++) av[i] = as[ty * 4 + i][q];
#pragma unroll
      for (int j = 0; j < 4; j++) bv[j] = bs[tx * 4 + j][q];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = __dp4a(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const long long r = row0 + ty * 4 + i;
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const long long col = col0 + tx * 4 + j;
      if (r < m && col < n) c[r * n + col] = acc[i][j];
    }
  }
}
