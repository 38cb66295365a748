/*
 * safetensors.h - read and write checkpoints in the safetensors layout, so a model
 * trained by moebench loads in the reference PyTorch implementations and back.
 *
 * The layout: 8 bytes, the header length N as a little-endian unsigned 64-bit integer;
 * N bytes of JSON, one object mapping each tensor name to
 *   {"dtype":"F32","shape":[4,8],"data_offsets":[BEGIN,END]}
 * plus an optional "__metadata__" object of string values; then the tensors' raw bytes,
 * little-endian, row-major, offsets relative to the end of the header. The writer pads
 * the header with spaces to a multiple of 8 bytes, as the reference writer does, so
 * every tensor starts 8-byte aligned in the file.
 *
 * Dtypes: F32 and BF16 (stored from float by round to nearest, ties to even, bf16.h).
 * The reader is strict: header length within the file and at most ST_MAX_HEADER bytes,
 * well-formed JSON with only the keys above, known dtypes, at most ST_MAX_DIMS dims,
 * shape product * dtype size == byte span, spans contiguous from 0 without overlap and
 * ending exactly at the end of the file (no trailing bytes), no duplicate or empty
 * names, a regular file (a FIFO or a device is refused before anything is read).
 * Tensor bytes are read on demand (st_read_f32), so opening a large checkpoint costs
 * only its header.
 *
 * Every function returns MB_OK or a negative MB_ERR_* (status.h); why then holds one
 * line naming the file and, where there is one, the tensor.
 */
#ifndef MB_MODEL_SAFETENSORS_H
#define MB_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
/* The reference implementation's header bound (100 MB). */
#define ST_MAX_HEADER 100000000ull
/* At most this many tensors in one file (DeepSeek-V3 has about 92k). */
#define ST_MAX_TENSORS 1000000

enum st_dtype {
	ST_F32 = 0,
	ST_BF16 = 1,
};

/* A tensor to write: its values are floats in host memory, stored as dtype. */
struct st_tensor {
	const char *name;
	enum st_dtype dtype;
	int ndim;                       /* 0 (a scalar) .. ST_MAX_DIMS */
	int64_t shape[ST_MAX_DIMS];
	const float *data;              /* prod(shape) values, row-major */
};

/* A tensor listed in an open file. */
struct st_entry {
	const char *name;               /* owned by the st_file */
	enum st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	int64_t numel;                  /* prod(shape) */
	uint64_t begin, end;            /* byte span, relative to the end of the header */
};

struct st_file;

/* st_dtype_name returns "F32" or "BF16"; st_dtype_size the bytes of one element. */
const char *st_dtype_name(enum st_dtype dtype);
size_t st_dtype_size(enum st_dtype dtype);

/* st_write writes n tensors, in the order given, to path, atomically (a temporary file
 * beside it, fsync, rename: a failure leaves any earlier file untouched). meta_kv is
 * NULL or a NULL-terminated list of key, value strings for "__metadata__". Names must
 * be non-empty, unique and not "__metadata__"; shapes non-negative. Returns MB_OK,
 * MB_ERR_ARG (bad tensor list, named), MB_ERR_NOMEM or MB_ERR_IO. */
int st_write(const char *path, const struct st_tensor *t, int n, const char *const *meta_kv,
	     char *why, size_t len);

/* st_open opens and validates path (see the rules above) and lists its tensors in
 * header order. Returns MB_OK, MB_ERR_IO (cannot open or read, not a regular file),
 * MB_ERR_PARSE (malformed, with the rule broken and the tensor named) or MB_ERR_NOMEM.
 * *out is NULL on failure. */
int st_open(struct st_file **out, const char *path, char *why, size_t len);
/* st_count is the number of tensors; st_at the i-th in header order (NULL when out of
 * range); st_find the one named name (NULL when absent; O(log n)). */
int st_count(const struct st_file *f);
const struct st_entry *st_at(const struct st_file *f, int i);
const struct st_entry *st_find(const struct st_file *f, const char *name);
/* st_meta returns the "__metadata__" value of key, or NULL. */
const char *st_meta(const struct st_file *f, const char *key);
/* st_read_f32 reads tensor name into dst as floats (BF16 widened exactly). With
 * expect_shape given, a tensor whose shape differs is refused (MB_ERR_PARSE, both
 * shapes named); with expect_shape NULL, dst must hold st_find(f, name)->numel floats.
 * A missing tensor is MB_ERR_ARG; a short read MB_ERR_IO. */
int st_read_f32(const struct st_file *f, const char *name, float *dst,
		const int64_t *expect_shape, int expect_ndim, char *why, size_t len);
/* st_close closes the file and frees everything st_open allocated (NULL is fine). */
void st_close(struct st_file *f);

#endif
