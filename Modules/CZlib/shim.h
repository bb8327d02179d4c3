#ifndef BACKPROP_CZLIB_SHIM_H
#define BACKPROP_CZLIB_SHIM_H
// zlib, used to read gzip-compressed IDX files. No stable API: for Backprop's own use.
#include <zlib.h>
#endif
