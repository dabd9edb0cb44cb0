//! The one place in the workspace that calls the CUDA driver through `unsafe` code.
//!
//! Why unsafe is needed here and nowhere else: cudarc marks three things we need as `unsafe fn`, because
//! the compiler cannot check what happens on the other side of the C ABI or on the device:
//! - probing whether `libcuda` can be loaded ([`cudarc::driver::sys::is_culib_present`]); it must be
//!   called before any other driver call, or cudarc panics on a host without the driver;
//! - asking the driver its version (a raw `cuDriverGetVersion` call writing through a pointer);
//! - launching a kernel ([`cudarc::driver::LaunchArgs::launch`]): cudarc cannot know whether the
//!   arguments match the kernel's parameters or whether the kernel stays inside its buffers.
//!
//! Each `unsafe` block states why it is sound. Everything else (contexts, modules, memory, device
//! attributes) goes through cudarc's safe API, and callers outside this module only see safe functions.
#![allow(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg, sys,
};

use super::GpuError;

/// Whether the CUDA driver library can be loaded on this host.
pub fn driver_present() -> bool {
    // SAFETY: only tries `dlopen` on the driver library's candidate names and closes it again; it reads
    // and writes no memory of ours and has no precondition.
    unsafe { sys::is_culib_present() }
}

/// The driver's CUDA version as `major.minor` (e.g. "12.8"); only call after [`driver_present`].
pub fn driver_version() -> Option<String> {
    let mut v: std::ffi::c_int = 0;
    // SAFETY: the library is present (checked by the caller, and cudarc loads it on first use); the call
    // writes one `c_int` through a pointer to a live local.
    let rc = unsafe { sys::cuDriverGetVersion(&raw mut v) };
    (rc == sys::CUresult::CUDA_SUCCESS && v > 0)
        .then(|| format!("{}.{}", v / 1000, (v % 1000) / 10))
}

/// The visible devices, read without creating a context (so discovery neither reserves device memory nor
/// becomes an MPS client); only call after [`driver_present`].
pub fn list_devices() -> Result<Vec<super::GpuInfo>, GpuError> {
    use cudarc::driver::result::{self, device};
    result::init().map_err(GpuError::driver("initialising the driver (cuInit)"))?;
    let n = device::get_count().map_err(GpuError::driver("counting devices"))?;
    let mut out = Vec::new();
    for i in 0..n.max(0) {
        let dev = device::get(i).map_err(GpuError::driver("opening a device"))?;
        let name = device::get_name(dev).map_err(GpuError::driver("reading a device name"))?;
        let attr = |a| {
            // SAFETY: `dev` was just returned by cuDeviceGet for an ordinal below the device count, so
            // it is a valid device handle; the call only writes one integer that cudarc owns.
            unsafe { device::get_attribute(dev, a) }
                .map_err(GpuError::driver("reading a device attribute"))
        };
        use sys::CUdevice_attribute as A;
        let major = attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = attr(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let sms = attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let per_sm = attr(A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR)?;
        // SAFETY: as above, a valid device handle; the call writes one `usize` that cudarc owns.
        let mem = unsafe { device::total_mem(dev) }
            .map_err(GpuError::driver("reading a device's memory size"))?;
        out.push(super::GpuInfo {
            index: u32::try_from(i).unwrap_or(0),
            name,
            memory_bytes: mem as u64,
            sm_count: u32::try_from(sms).unwrap_or(0),
            max_threads_per_sm: u32::try_from(per_sm).unwrap_or(0),
            compute_capability: format!("{major}.{minor}"),
        });
    }
    Ok(out)
}

/// The PTX source of `fma_loop` (see the file's header comment).
pub const FMA_PTX: &str = include_str!("fma.ptx");
const FMA_ENTRY: &str = "fma_loop";
/// Threads per block of every launch (14–16 registers per thread, so a full SM fits 2048 of them).
pub const THREADS: u32 = 256;

/// The shape of a launch: how many blocks of [`THREADS`] threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// Enough blocks for several full waves over every SM: its time scales with the SMs the context may
    /// use (the parallel part of an inference).
    Wide,
    /// One block: runs on one SM whatever the share (the serial part).
    Single,
}

/// The loaded kernel on one device, with its output buffer sized for a wide launch.
pub struct FmaKernel {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    func: CudaFunction,
    out: CudaSlice<f32>,
    wide_blocks: u32,
    /// Device name, SM count.
    pub device: String,
    pub sms: u32,
}

impl std::fmt::Debug for FmaKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FmaKernel")
            .field("device", &self.device)
            .field("sms", &self.sms)
            .field("wide_blocks", &self.wide_blocks)
            .finish_non_exhaustive()
    }
}

/// Waves of a wide launch over the whole GPU: several, so that a share of the SMs runs a whole number of
/// waves to within a few percent (1 wave at 100 % is 10.2 waves at 10 %, rounded up to 11; 4 waves make it
/// 40.6 → 41).
const WIDE_WAVES: u32 = 4;

impl FmaKernel {
    /// Creates a context on visible device `ordinal` and loads the kernel (the driver JIT-compiles the PTX).
    pub fn open(ordinal: usize) -> Result<FmaKernel, GpuError> {
        if !driver_present() {
            return Err(GpuError::NoDriver);
        }
        let ctx = CudaContext::new(ordinal).map_err(GpuError::driver("creating a context"))?;
        let device = ctx
            .name()
            .map_err(GpuError::driver("reading the device name"))?;
        let attr = |a, what| ctx.attribute(a).map_err(GpuError::driver(what));
        let sms = attr(
            sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            "reading the SM count",
        )?;
        let per_sm = attr(
            sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR,
            "reading the threads per SM",
        )?;
        let sms = u32::try_from(sms.max(1)).unwrap_or(1);
        let blocks_per_sm = u32::try_from(per_sm).unwrap_or(0).max(THREADS) / THREADS;
        let wide_blocks = sms * blocks_per_sm * WIDE_WAVES;
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(FMA_PTX))
            .map_err(GpuError::driver("loading the PTX kernel"))?;
        let func = module
            .load_function(FMA_ENTRY)
            .map_err(GpuError::driver("finding fma_loop"))?;
        let stream = ctx.default_stream();
        let out = stream
            .alloc_zeros::<f32>((wide_blocks * THREADS) as usize)
            .map_err(GpuError::driver("allocating the output buffer"))?;
        Ok(FmaKernel {
            ctx,
            stream,
            func,
            out,
            wide_blocks,
            device,
            sms,
        })
    }

    /// Blocks of a launch of this shape.
    pub fn blocks(&self, grid: Grid) -> u32 {
        match grid {
            Grid::Wide => self.wide_blocks,
            Grid::Single => 1,
        }
    }

    /// Runs one launch of `iters` rounds and waits for it; returns the wall time (launch + run + sync).
    pub fn run(&mut self, grid: Grid, iters: u32) -> Result<Duration, GpuError> {
        let cfg = LaunchConfig {
            grid_dim: (self.blocks(grid), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let start = Instant::now();
        let mut launch = self.stream.launch_builder(&self.func);
        launch.arg(&mut self.out).arg(&iters);
        // SAFETY: `fma_loop` takes exactly (.u64 pointer to f32, .u32) and we push exactly a device buffer
        // and a `u32`, in that order. Each thread writes only out[blockIdx.x * blockDim.x + threadIdx.x];
        // the largest index is blocks × THREADS − 1 ≤ wide_blocks × THREADS − 1, the buffer's last element
        // (a single-block launch uses its first THREADS elements). cudarc keeps the buffer alive until the
        // stream has finished with it.
        unsafe { launch.launch(cfg) }.map_err(GpuError::driver("launching fma_loop"))?;
        self.stream
            .synchronize()
            .map_err(GpuError::driver("waiting for fma_loop"))?;
        Ok(start.elapsed())
    }

    /// The context's device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ctx.ordinal()
    }
}
