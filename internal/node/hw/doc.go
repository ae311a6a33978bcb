// Package hw discovers what a supplier's machine can offer the network:
// its NVIDIA GPUs (through NVML when the binary is built with cgo on linux,
// else by parsing `nvidia-smi --query-gpu` CSV), its CPU, memory and free
// disk, and how much compute it has. Discover returns a Report; Summary renders
// it as one line and LedgerHardware maps it onto what MsgRegisterNode declares.
//
// Compute figures come in three kinds, and the Report always says which:
// "table" figures are NVIDIA's published dense tensor and FP32 rates for GPUs
// it recognises by name; "derived" figures are computed from NVML's readings
// (CUDA cores × max SM clock × 2 for FP32); "measured" figures are timed here:
// the CPU's int8 throughput on the node's own tensor kernel, and each GPU's bf16
// rate on its tensor cores through internal/cuda (gpubench.go), which confirms a
// table figure or replaces it. A host with no NVIDIA driver is a CPU node and
// says why.
//
// Only nvml_cgo.go imports go-nvml; everything else, including the mapping of
// NVML readings onto a Report, builds and tests without cgo. The package reads
// files and runs nvidia-smi, but starts no daemons and holds no state: every
// source is a seam in Options, so tests run on recorded fixtures in
// milliseconds and never need a GPU.
package hw
