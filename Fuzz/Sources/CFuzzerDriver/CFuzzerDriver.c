// The declaration in include/CFuzzerDriver.h is all this target provides; libclang_rt.fuzzer defines
// LLVMFuzzerRunDriver when the fuzz targets are linked with -sanitize=fuzzer.
#include "CFuzzerDriver.h"
