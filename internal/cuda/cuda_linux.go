//go:build linux && cgo

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// The few CUDA driver API types and entry points this package uses, declared here so that
// it builds without the CUDA toolkit's headers; libcuda.so.1 is opened at run time.
typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef unsigned long long CUdeviceptr;

static CUresult (*p_cuInit)(unsigned int);
static CUresult (*p_cuDeviceGetCount)(int *);
static CUresult (*p_cuDeviceGet)(CUdevice *, int);
static CUresult (*p_cuDeviceGetName)(char *, int, CUdevice);
static CUresult (*p_cuDeviceGetAttribute)(int *, int, CUdevice);
static CUresult (*p_cuDeviceGetUuid)(unsigned char *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
static CUresult (*p_cuDevicePrimaryCtxRelease)(CUdevice);
static CUresult (*p_cuCtxSetCurrent)(CUcontext);
static CUresult (*p_cuModuleLoadData)(CUmodule *, const void *);
static CUresult (*p_cuModuleUnload)(CUmodule);
static CUresult (*p_cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
static CUresult (*p_cuMemAlloc)(CUdeviceptr *, size_t);
static CUresult (*p_cuMemFree)(CUdeviceptr);
static CUresult (*p_cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
static CUresult (*p_cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
static CUresult (*p_cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, void *, void **, void **);
static CUresult (*p_cuCtxSynchronize)(void);
static CUresult (*p_cuGetErrorString)(CUresult, const char **);

static void *lib;

// omni_cuda_open loads libcuda.so.1 and its entry points once; it returns NULL or why not.
static const char *omni_cuda_open(void) {
	if (lib) return NULL;
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(var, name) if (!(*(void **)&var = dlsym(h, name))) return "libcuda.so.1 has no " name;
	SYM(p_cuInit, "cuInit")
	SYM(p_cuDeviceGetCount, "cuDeviceGetCount")
	SYM(p_cuDeviceGet, "cuDeviceGet")
	SYM(p_cuDeviceGetName, "cuDeviceGetName")
	SYM(p_cuDeviceGetAttribute, "cuDeviceGetAttribute")
	SYM(p_cuDeviceGetUuid, "cuDeviceGetUuid")
	SYM(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	SYM(p_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	SYM(p_cuCtxSetCurrent, "cuCtxSetCurrent")
	SYM(p_cuModuleLoadData, "cuModuleLoadData")
	SYM(p_cuModuleUnload, "cuModuleUnload")
	SYM(p_cuModuleGetFunction, "cuModuleGetFunction")
	SYM(p_cuMemAlloc, "cuMemAlloc_v2")
	SYM(p_cuMemFree, "cuMemFree_v2")
	SYM(p_cuMemcpyHtoD, "cuMemcpyHtoD_v2")
	SYM(p_cuMemcpyDtoH, "cuMemcpyDtoH_v2")
	SYM(p_cuLaunchKernel, "cuLaunchKernel")
	SYM(p_cuCtxSynchronize, "cuCtxSynchronize")
	SYM(p_cuGetErrorString, "cuGetErrorString")
#undef SYM
	lib = h;
	return NULL;
}

static CUresult omni_init(void) { return p_cuInit(0); }
static CUresult omni_device_count(int *n) { return p_cuDeviceGetCount(n); }
static CUresult omni_device(CUdevice *d, int i) { return p_cuDeviceGet(d, i); }
static CUresult omni_device_name(char *s, int n, CUdevice d) { return p_cuDeviceGetName(s, n, d); }
static CUresult omni_attribute(int *v, int attr, CUdevice d) { return p_cuDeviceGetAttribute(v, attr, d); }
static CUresult omni_uuid(unsigned char *u, CUdevice d) { return p_cuDeviceGetUuid(u, d); }
static CUresult omni_ctx_retain(CUcontext *c, CUdevice d) { return p_cuDevicePrimaryCtxRetain(c, d); }
static CUresult omni_ctx_release(CUdevice d) { return p_cuDevicePrimaryCtxRelease(d); }
static CUresult omni_ctx_set(CUcontext c) { return p_cuCtxSetCurrent(c); }
static CUresult omni_module_load(CUmodule *m, const void *image) { return p_cuModuleLoadData(m, image); }
static CUresult omni_module_unload(CUmodule m) { return p_cuModuleUnload(m); }
static CUresult omni_function(CUfunction *f, CUmodule m, const char *name) { return p_cuModuleGetFunction(f, m, name); }
static CUresult omni_alloc(CUdeviceptr *p, size_t n) { return p_cuMemAlloc(p, n); }
static CUresult omni_free(CUdeviceptr p) { return p_cuMemFree(p); }
static CUresult omni_htod(CUdeviceptr dst, const void *src, size_t n) { return p_cuMemcpyHtoD(dst, src, n); }
static CUresult omni_dtoh(void *dst, CUdeviceptr src, size_t n) { return p_cuMemcpyDtoH(dst, src, n); }
static CUresult omni_sync(void) { return p_cuCtxSynchronize(); }

// omni_matvec launches one of freivalds.cu's kernels: a warp per row, 8 warps a block.
static CUresult omni_matvec(CUfunction f, CUdeviceptr m, CUdeviceptr v, CUdeviceptr out, int rows, int cols) {
	void *args[] = {&m, &v, &out, &rows, &cols};
	unsigned blocks = (unsigned)((rows + 7) / 8);
	return p_cuLaunchKernel(f, blocks, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
}

// omni_gemm launches gemm.cu's product: a 64×64 tile of C per block of 256 threads.
static CUresult omni_gemm(CUfunction f, unsigned gx, unsigned gy, CUdeviceptr a, CUdeviceptr b, CUdeviceptr c, int m, int n, int k) {
	void *args[] = {&a, &b, &c, &m, &n, &k};
	return p_cuLaunchKernel(f, gx, gy, 1, 256, 1, 1, 0, NULL, args, NULL);
}

// omni_mma launches mma.cu's benchmark: blocks of 256 threads.
static CUresult omni_mma(CUfunction f, unsigned blocks, CUdeviceptr out, int iters) {
	void *args[] = {&out, &iters};
	return p_cuLaunchKernel(f, blocks, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
}

static const char *omni_error(CUresult r) {
	const char *s = NULL;
	if (p_cuGetErrorString == NULL || p_cuGetErrorString(r, &s) != 0 || s == NULL) return "unknown CUDA error";
	return s;
}
*/
import "C"

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// Device is one GPU with freivalds.cu's kernels loaded, and mma.cu's and gemm.cu's once
// first used. Safe for concurrent use: calls take turns, each on a locked OS thread with
// the device's context current.
type Device struct {
	mu      sync.Mutex
	dev     C.CUdevice
	ctx     C.CUcontext
	mod     C.CUmodule
	i8, i32 C.CUfunction
	mma     lazyKernel // mma.cu's, loaded by the first MeasureBF16
	gemm    lazyKernel // gemm.cu's, loaded by the first MatMulInt8
	name    string
	uuid    string
	sms     int // multiprocessors
	ccMajor int
	ccMinor int
	closed  bool
	// corruptAt, when not negative, is the element of C that MatMulInt8 overwrites before
	// its check: a test's planted fault. open sets it to -1.
	corruptAt int
}

// CUdevice_attribute values (cuda.h).
const (
	attrMultiprocessors = 16
	attrCCMajor         = 75
	attrCCMinor         = 76
)

// open is Open with the kernels' PTX given, so that a test can load freshly compiled ones.
func open(index int, img images) (*Device, error) {
	if msg := C.omni_cuda_open(); msg != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, C.GoString(msg))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := check("cuInit", C.omni_init()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var n C.int
	if err := check("cuDeviceGetCount", C.omni_device_count(&n)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if index < 0 || index >= int(n) {
		return nil, fmt.Errorf("%w: GPU %d asked for, the driver sees %d", ErrUnavailable, index, int(n))
	}
	d := &Device{corruptAt: -1}
	if err := check("cuDeviceGet", C.omni_device(&d.dev, C.int(index))); err != nil {
		return nil, err
	}
	var name [256]C.char
	if err := check("cuDeviceGetName", C.omni_device_name(&name[0], C.int(len(name)), d.dev)); err != nil {
		return nil, err
	}
	d.name = C.GoString(&name[0])
	var uuid [16]C.uchar
	if err := check("cuDeviceGetUuid", C.omni_uuid(&uuid[0], d.dev)); err != nil {
		return nil, err
	}
	u := C.GoBytes(unsafe.Pointer(&uuid[0]), 16)
	d.uuid = fmt.Sprintf("GPU-%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	for _, a := range []struct {
		attr C.int
		v    *int
	}{{attrMultiprocessors, &d.sms}, {attrCCMajor, &d.ccMajor}, {attrCCMinor, &d.ccMinor}} {
		var v C.int
		if err := check("cuDeviceGetAttribute", C.omni_attribute(&v, a.attr, d.dev)); err != nil {
			return nil, err
		}
		*a.v = int(v)
	}
	d.mma = lazyKernel{image: img.mma, file: "mma.ptx", name: "omni_mma_bf16"}
	d.gemm = lazyKernel{image: img.gemm, file: "gemm.ptx", name: "omni_gemm_i8"}
	// Out-parameters are C-typed locals: cgo refuses a pointer into a Go struct that holds
	// Go pointers.
	var ctx C.CUcontext
	if err := check("cuDevicePrimaryCtxRetain", C.omni_ctx_retain(&ctx, d.dev)); err != nil {
		return nil, err
	}
	d.ctx = ctx
	if err := d.load(img.freivalds); err != nil {
		C.omni_ctx_release(d.dev)
		return nil, err
	}
	return d, nil
}

// load makes d's context current and loads the PTX module and its two kernels.
func (d *Device) load(ptx []byte) error {
	if len(bytes.TrimSpace(ptx)) == 0 {
		return fmt.Errorf("%w: no kernel image was built into this binary (freivalds.ptx is empty)", ErrUnavailable)
	}
	if err := check("cuCtxSetCurrent", C.omni_ctx_set(d.ctx)); err != nil {
		return err
	}
	image := C.CString(string(ptx)) // NUL-terminated, as cuModuleLoadData reads PTX
	defer C.free(unsafe.Pointer(image))
	var mod C.CUmodule
	if err := check("cuModuleLoadData", C.omni_module_load(&mod, unsafe.Pointer(image))); err != nil {
		return err
	}
	d.mod = mod
	for _, k := range []struct {
		f    *C.CUfunction
		name string
	}{{&d.i8, "omni_matvec_i8"}, {&d.i32, "omni_matvec_i32"}} {
		cname := C.CString(k.name)
		var f C.CUfunction
		err := check("cuModuleGetFunction "+k.name, C.omni_function(&f, d.mod, cname))
		C.free(unsafe.Pointer(cname))
		*k.f = f
		if err != nil {
			C.omni_module_unload(d.mod)
			return err
		}
	}
	return nil
}

// Name is the GPU's name as the driver reports it ("NVIDIA H200").
func (d *Device) Name() string { return d.name }

// UUID is the GPU's UUID as nvidia-smi and NVML print it ("GPU-e56329fe-dde7-…").
func (d *Device) UUID() string { return d.uuid }

// Close unloads the kernels and releases the context. Checks loaded before must have been
// released.
func (d *Device) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if C.omni_ctx_set(d.ctx) == 0 {
		C.omni_module_unload(d.mod)
		for _, k := range []*lazyKernel{&d.mma, &d.gemm} {
			if k.mod != nil {
				C.omni_module_unload(k.mod)
			}
		}
	}
	C.omni_ctx_release(d.dev)
}

// current locks the calling goroutine to its thread and makes d's context current there;
// the returned func undoes both.
func (d *Device) current() (func(), error) {
	d.mu.Lock()
	runtime.LockOSThread()
	done := func() { runtime.UnlockOSThread(); d.mu.Unlock() }
	if d.closed {
		done()
		return nil, fmt.Errorf("%w: device closed", ErrUnavailable)
	}
	if err := check("cuCtxSetCurrent", C.omni_ctx_set(d.ctx)); err != nil {
		done()
		return nil, err
	}
	return done, nil
}

// products are one check's operands and vectors in GPU memory.
type products struct {
	d              *Device
	a, b, c        C.CUdeviceptr
	r, br, abr, cr C.CUdeviceptr
	m, k, n        int
}

// LoadInt8 copies a, b and c to the GPU (verify.Accelerator). The release frees them.
func (d *Device) LoadInt8(a, b *tensor.Int8Matrix, c *tensor.Int32Matrix) (verify.Int8Products, func(), error) {
	if a.Cols != b.Rows || c.Rows != a.Rows || c.Cols != b.Cols {
		return nil, nil, fmt.Errorf("cuda: %dx%d · %dx%d = %dx%d do not conform", a.Rows, a.Cols, b.Rows, b.Cols, c.Rows, c.Cols)
	}
	done, err := d.current()
	if err != nil {
		return nil, nil, err
	}
	defer done()
	p := &products{d: d, m: a.Rows, k: a.Cols, n: b.Cols}
	if err := upload([]buffer{
		{&p.a, len(a.Data), dataPtr(a.Data)},
		{&p.b, len(b.Data), dataPtr(b.Data)},
		{&p.c, 4 * len(c.Data), dataPtr(c.Data)},
		{&p.r, 8 * p.n, nil}, {&p.br, 8 * p.k, nil}, {&p.abr, 8 * p.m, nil}, {&p.cr, 8 * p.m, nil},
	}); err != nil {
		p.free()
		return nil, nil, err
	}
	return p, func() {
		if done, err := d.current(); err == nil {
			p.free()
			done()
		}
	}, nil
}

// free releases p's GPU memory; the caller holds the device with its context current.
func (p *products) free() {
	for _, ptr := range []*C.CUdeviceptr{&p.a, &p.b, &p.c, &p.r, &p.br, &p.abr, &p.cr} {
		if *ptr != 0 {
			C.omni_free(*ptr)
			*ptr = 0
		}
	}
}

// Round computes A·(B·r) and C·r mod p on the GPU (verify.Int8Products).
func (p *products) Round(r, abr, cr []uint64) error {
	if len(r) != p.n || len(abr) != p.m || len(cr) != p.m {
		return fmt.Errorf("cuda: vectors of %d, %d and %d for a %dx%d · %dx%d check", len(r), len(abr), len(cr), p.m, p.k, p.k, p.n)
	}
	done, err := p.d.current()
	if err != nil {
		return err
	}
	defer done()
	return p.round(r, abr, cr)
}

// round is Round for a caller that holds the device with its context current.
func (p *products) round(r, abr, cr []uint64) error {
	if p.n > 0 {
		if err := check("cuMemcpyHtoD", C.omni_htod(p.r, dataPtr(r), C.size_t(8*p.n))); err != nil {
			return err
		}
	}
	steps := []struct {
		what      string
		f         C.CUfunction
		m, v, out C.CUdeviceptr
		rows      int
		cols      int
	}{
		{"B·r", p.d.i8, p.b, p.r, p.br, p.k, p.n},
		{"A·(B·r)", p.d.i8, p.a, p.br, p.abr, p.m, p.k},
		{"C·r", p.d.i32, p.c, p.r, p.cr, p.m, p.n},
	}
	for _, s := range steps {
		if s.rows == 0 {
			continue
		}
		if err := check("launch "+s.what, C.omni_matvec(s.f, s.m, s.v, s.out, C.int(s.rows), C.int(s.cols))); err != nil {
			return err
		}
	}
	if err := check("cuCtxSynchronize", C.omni_sync()); err != nil {
		return err
	}
	if p.m > 0 {
		if err := check("cuMemcpyDtoH", C.omni_dtoh(dataPtr(abr), p.abr, C.size_t(8*p.m))); err != nil {
			return err
		}
		if err := check("cuMemcpyDtoH", C.omni_dtoh(dataPtr(cr), p.cr, C.size_t(8*p.m))); err != nil {
			return err
		}
	}
	return nil
}

// mmaOps is what one warp does per iteration of mma.cu's loop: CHAINS products of 4096
// operations each.
const mmaOps = 8 * 2 * 16 * 8 * 16

// MeasureBF16 runs mma.cu's tensor-core benchmark for about d and returns the bf16 rate
// it sustained, in TFLOPS (10^12 operations a second). It needs compute capability 8.0.
func (d *Device) MeasureBF16(dur time.Duration) (float64, error) {
	if d.ccMajor < 8 {
		return 0, fmt.Errorf("cuda: bf16 tensor cores need compute capability 8.0; %s is %d.%d", d.name, d.ccMajor, d.ccMinor)
	}
	done, err := d.current()
	if err != nil {
		return 0, err
	}
	defer done()
	mma, err := d.mma.function()
	if err != nil {
		return 0, err
	}
	// Eight blocks of eight warps per multiprocessor keep every tensor core busy.
	blocks := 8 * max(d.sms, 1)
	var out C.CUdeviceptr
	if err := check("cuMemAlloc", C.omni_alloc(&out, C.size_t(4*256*blocks))); err != nil {
		return 0, err
	}
	defer C.omni_free(out)
	run := func(iters int) (time.Duration, error) {
		start := time.Now()
		if err := check("launch mma", C.omni_mma(mma, C.uint(blocks), out, C.int(iters))); err != nil {
			return 0, err
		}
		if err := check("cuCtxSynchronize", C.omni_sync()); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	if _, err := run(16); err != nil { // warm-up: clocks up, the kernel compiled for this GPU
		return 0, err
	}
	iters := 256
	took, err := run(iters)
	if err != nil {
		return 0, err
	}
	if took < dur {
		iters = int(min(float64(iters)*float64(dur)/float64(max(took, time.Microsecond)), 1<<22))
		if took, err = run(iters); err != nil {
			return 0, err
		}
	}
	ops := float64(blocks*8) * float64(iters) * mmaOps
	return ops / took.Seconds() / 1e12, nil
}

// lazyKernel is a kernel of a module loaded when first used.
type lazyKernel struct {
	image      []byte // the module's PTX
	file, name string
	mod        C.CUmodule // nil until loaded
	f          C.CUfunction
}

// function loads k's module if it is not yet; the caller holds the device with its
// context current.
func (k *lazyKernel) function() (C.CUfunction, error) {
	if k.mod != nil {
		return k.f, nil
	}
	if len(bytes.TrimSpace(k.image)) == 0 {
		return nil, fmt.Errorf("%w: %s was not built into this binary (%s is empty)", ErrUnavailable, k.name, k.file)
	}
	image := C.CString(string(k.image))
	var mod C.CUmodule
	err := check("cuModuleLoadData "+k.file, C.omni_module_load(&mod, unsafe.Pointer(image)))
	C.free(unsafe.Pointer(image))
	if err != nil {
		return nil, err
	}
	cname := C.CString(k.name)
	var f C.CUfunction
	err = check("cuModuleGetFunction "+k.name, C.omni_function(&f, mod, cname))
	C.free(unsafe.Pointer(cname))
	if err != nil {
		C.omni_module_unload(mod)
		return nil, err
	}
	k.mod, k.f = mod, f
	return f, nil
}

// MatMulInt8 computes a·b on the GPU with gemm.cu's kernel: exactly tensor.MatMulInt8's
// product, for conforming matrices whose inner dimension is at most tensor.MaxInner.
func (d *Device) MatMulInt8(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error) {
	if a.Cols != b.Rows || a.Cols > tensor.MaxInner || a.Rows <= 0 || b.Cols <= 0 || a.Cols <= 0 {
		return nil, fmt.Errorf("cuda: cannot multiply %dx%d by %dx%d", a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if len(a.Data) != a.Rows*a.Cols || len(b.Data) != b.Rows*b.Cols {
		return nil, fmt.Errorf("cuda: malformed operands")
	}
	done, err := d.current()
	if err != nil {
		return nil, err
	}
	defer done()
	gemm, err := d.gemm.function()
	if err != nil {
		return nil, err
	}
	c := &tensor.Int32Matrix{Rows: a.Rows, Cols: b.Cols, Data: make([]int32, a.Rows*b.Cols)}
	var da, db, dc C.CUdeviceptr
	defer func() {
		for _, p := range []C.CUdeviceptr{da, db, dc} {
			if p != 0 {
				C.omni_free(p)
			}
		}
	}()
	if err := upload([]buffer{{&da, len(a.Data), dataPtr(a.Data)}, {&db, len(b.Data), dataPtr(b.Data)}, {&dc, 4 * len(c.Data), nil}}); err != nil {
		return nil, err // the deferred frees release what was allocated
	}
	gx, gy := (b.Cols+63)/64, (a.Rows+63)/64
	if gy > 65535 {
		return nil, fmt.Errorf("cuda: %d rows is more than this kernel's grid takes (%d)", a.Rows, 65535*64)
	}
	if err := check("launch gemm", C.omni_gemm(gemm, C.uint(gx), C.uint(gy), da, db, dc, C.int(a.Rows), C.int(b.Cols), C.int(a.Cols))); err != nil {
		return nil, err
	}
	if err := check("cuCtxSynchronize", C.omni_sync()); err != nil {
		return nil, err
	}
	if d.corruptAt >= 0 && d.corruptAt < len(c.Data) { // a test's fault, planted in C
		bad := C.int(12345)
		if err := check("cuMemcpyHtoD", C.omni_htod(dc+C.CUdeviceptr(4*d.corruptAt), unsafe.Pointer(&bad), 4)); err != nil {
			return nil, err
		}
	}
	if err := d.checkProduct(da, db, dc, a.Rows, a.Cols, b.Cols); err != nil {
		return nil, err
	}
	if err := check("cuMemcpyDtoH", C.omni_dtoh(dataPtr(c.Data), dc, C.size_t(4*len(c.Data)))); err != nil {
		return nil, err
	}
	return c, nil
}

// checkProduct runs one round of Freivalds' check, with a random vector of this process's,
// on the m×k · k×n product just computed, where its operands already are: about a
// millisecond at n = 4096, against the product's tens. A product the GPU got wrong (a
// fault: the kernel is exact) is ErrWrongProduct, so the node computes it again on the
// CPU instead of committing a result its validators would fail and slash it for. One round
// misses a wrong product with probability below 2^-60.
func (d *Device) checkProduct(a, b, c C.CUdeviceptr, m, k, n int) error {
	raw := make([]byte, 8*n)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	r := make([]uint64, n)
	for j := range r {
		v := binary.LittleEndian.Uint64(raw[8*j:]) >> 3 // below 2^61
		if v == fieldP {
			v = 0
		}
		r[j] = v
	}
	p := &products{d: d, a: a, b: b, c: c, m: m, k: k, n: n}
	defer func() {
		p.a, p.b, p.c = 0, 0, 0 // the caller's
		p.free()
	}()
	if err := upload([]buffer{{&p.r, 8 * n, nil}, {&p.br, 8 * k, nil}, {&p.abr, 8 * m, nil}, {&p.cr, 8 * m, nil}}); err != nil {
		return err
	}
	abr, cr := make([]uint64, m), make([]uint64, m)
	if err := p.round(r, abr, cr); err != nil {
		return err
	}
	for i := range abr {
		if abr[i] != cr[i] {
			return fmt.Errorf("%w (row %d)", ErrWrongProduct, i)
		}
	}
	return nil
}

// fieldP is verify's modulus, 2^61 − 1.
const fieldP = 1<<61 - 1

// buffer is GPU memory to allocate at *ptr, of bytes, filled from src when it is not nil.
type buffer struct {
	ptr   *C.CUdeviceptr
	bytes int
	src   unsafe.Pointer
}

// upload allocates each buffer (at least a byte) and copies its src into it, stopping at
// the first error; the caller frees what was allocated (a non-zero *ptr). It holds the
// device with its context current.
func upload(bufs []buffer) error {
	for _, b := range bufs {
		if err := check("cuMemAlloc", C.omni_alloc(b.ptr, C.size_t(max(b.bytes, 1)))); err != nil {
			return err
		}
		if b.src != nil && b.bytes > 0 {
			if err := check("cuMemcpyHtoD", C.omni_htod(*b.ptr, b.src, C.size_t(b.bytes))); err != nil {
				return err
			}
		}
	}
	return nil
}

// dataPtr is the address of s's first element, or nil for an empty s.
func dataPtr[T any](s []T) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(&s[0])
}

// check turns a CUDA result into an error naming the call.
func check(call string, r C.CUresult) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuda: %s: %s (error %d)", call, C.GoString(C.omni_error(r)), int(r))
}
