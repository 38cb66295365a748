/*
 * permute.h - the local data movement of expert-parallel dispatch and combine: which
 * token rows go to which destination, the gather into send buffers, the expert-major
 * arrangement a grouped GEMM reads, and the weighted un-permutation of combine.
 * CPU reference in permute.c; CUDA kernels in permute.cu (moe_nocuda.c returns
 * MB_ERR_UNSUPPORTED without CUDA). No communication here: harness/parallel/ep.c moves the
 * buffers between ranks.
 *
 * Shape letters: T tokens, K experts per token (top-k), H hidden, E experts, G
 * destinations of one hop (ranks, or nodes on the inter-node hop), C copies.
 *
 * Metadata of a token copy ("meta row", PERMUTE_META_INTS(K) int32):
 *   [src_rank, token, expert_0 .. expert_{K-1}, weight_0 .. weight_{K-1}]
 * experts are global ids (-1: not for this destination), weights FP32 bit patterns.
 *
 * Payload row ("row", fmt.row_bytes, a multiple of 16 so every row starts aligned):
 *   BF16: H bf16 values
 *   FP8:  ceil(H/128) FP32 scales, then H E4M3 codes (DeepSeek-V3's 1x128 activation
 *         quantization, bit for bit fp8_quantize's)
 *   then zero padding up to row_bytes.
 *
 * Order of a send buffer: destination-major, and within a destination by item (token
 * index at the source, received copy index at a relay). A token (item) sends ONE copy
 * to each destination holding at least one of its experts; the copy's meta lists the
 * experts it picked there (the others -1).
 *
 * Expert-major layout (the grouped-GEMM input): rows of local expert 0, zero rows up to
 * a multiple of 128, rows of local expert 1, ... A copy picking j local experts appears
 * in j rows. Within an expert, rows follow the received copy order.
 */
#ifndef MB_PERMUTE_H
#define MB_PERMUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PERMUTE_META_INTS(k) (2 + 2 * (k))
#define PERMUTE_ALIGN_ROWS 128   /* grouped-GEMM tile: each expert's rows padded to it */

enum permute_payload { PERMUTE_BF16, PERMUTE_FP8 };

struct permute_format {
	int hidden;                /* H */
	enum permute_payload payload;
	int scales;                /* FP32 scales per row: ceil(H/128) for FP8, else 0 */
	size_t row_bytes;          /* padded stride of a row */
	size_t logical_bytes;      /* H * element size + scales * 4: what a copy carries */
};

/* permute_format_of fills fmt for hidden and payload. Returns MB_OK or MB_ERR_ARG. */
int permute_format_of(int hidden, enum permute_payload payload, struct permute_format *fmt);
const char *permute_payload_name(enum permute_payload p);   /* "bf16", "fp8" */

/* One hop's plan: items (tokens at the source, received copies at a relay) to groups
 * (destinations). slot_item[s] is the item copy s comes from; slots of group g are
 * [offsets[g], offsets[g+1]); item_slots[i*K + j] lists item i's slots (-1 after the
 * last), for the un-permutation of combine. */
struct permute_plan {
	int groups, topk;
	long items, slots;
	long *counts;          /* [groups] */
	long *offsets;         /* [groups + 1] */
	int32_t *slot_item;    /* [slots] */
	int32_t *slot_group;   /* [slots] */
	int32_t *item_slots;   /* [items * K] */
};

/* permute_plan_build plans one hop from items' meta rows: expert e goes to group
 * e / experts_per_group (of groups). Returns MB_OK, MB_ERR_ARG (an expert outside
 * [0, groups * experts_per_group)) or MB_ERR_NOMEM. */
int permute_plan_build(const int32_t *meta, long items, int topk, int experts_per_group,
		       int groups, struct permute_plan *p);
void permute_plan_free(struct permute_plan *p);

/* permute_meta_init writes the source's meta rows [T] from the routing. */
void permute_meta_init(int src_rank, const int32_t *topk_idx, const float *topk_w,
		       long tokens, int topk, int32_t *meta);
/* permute_meta_gather writes the meta row of every slot of p: the item's row with the
 * experts outside the slot's group set to -1 (weight 0). */
void permute_meta_gather(const int32_t *meta, const struct permute_plan *p,
			 int experts_per_group, int32_t *out);

/* permute_pack writes payload rows [T] from BF16 tokens x[T, H]: a copy, or the FP8
 * quantization (fp8_quantize, 1x128, E4M3, non-power-of-two scales). Returns MB_OK,
 * MB_ERR_ARG (a non-finite value) or MB_ERR_NOMEM. */
int permute_pack(const uint16_t *x, long tokens, const struct permute_format *fmt,
		 uint8_t *rows);

/* permute_gather copies rows: dst[s] = src[slot_item[s]] for s < slots. */
void permute_gather(const uint8_t *src, const int32_t *slot_item, long slots,
		    size_t row_bytes, uint8_t *dst);

/* The expert-major arrangement of C received copies for E_local experts. */
struct permute_experts {
	int experts, first_expert, topk;
	long copies;
	long *rows;            /* [experts] rows each expert received */
	long *offsets;         /* [experts + 1] padded: multiples of 128 */
	long rows_padded;      /* offsets[experts] */
	int32_t *row_copy;     /* [rows_padded] copy of each row, -1 for padding */
	int32_t *copy_rows;    /* [C * K] rows of each copy, -1 after the last */
	float *copy_weights;   /* [C * K] the routing weight of each of those rows */
};

/* permute_experts_build arranges copies (meta rows [C]) for the experts
 * [first_expert, first_expert + experts). Returns MB_OK, MB_ERR_ARG (a copy names an
 * expert outside that range) or MB_ERR_NOMEM. */
int permute_experts_build(const int32_t *meta, long copies, int topk, int first_expert,
			  int experts, struct permute_experts *x);
void permute_experts_free(struct permute_experts *x);

/* permute_arrange writes the expert-major input from received rows: BF16 into
 * xe[rows_padded, H] (uint16), or FP8 codes into xe[rows_padded, H] (uint8) and scales
 * into xe_scale[rows_padded, ceil(H/128)]. Padding rows: zeros, scale 1. */
void permute_arrange(const uint8_t *rows, const struct permute_format *fmt,
		     const struct permute_experts *x, void *xe, float *xe_scale);

/* permute_identity_experts writes y[rows_padded, H] (BF16) = the expert input
 * dequantized (FP8: decode * scale, rounded to BF16): experts that return their input,
 * so combine can be checked exactly. */
void permute_identity_experts(const struct permute_format *fmt, long rows, const void *xe,
			      const float *xe_scale, uint16_t *y);

/* permute_reduce is the (weighted) un-permutation: out[i] = sum_j w[i*K+j] *
 * in[idx[i*K+j]] over j < K until idx is -1 (w NULL: weights 1), FP32 accumulation in
 * j order, rounded once to BF16. in is [*, H] BF16, out [n_out, H] BF16. */
void permute_reduce(const uint16_t *in, int hidden, const int32_t *idx, const float *w,
		    int k, long n_out, uint16_t *out);

/* CUDA versions: the same results bit for bit, device pointers, on stream (a
 * cudaStream_t). Index tables and weights are device arrays too. Each returns MB_OK,
 * MB_ERR_CUDA, or MB_ERR_UNSUPPORTED in a build without CUDA. */
int permute_gather_cuda(const uint8_t *d_src, const int32_t *d_slot_item, long slots,
			size_t row_bytes, uint8_t *d_dst, void *stream);
int permute_arrange_cuda(const uint8_t *d_rows, const struct permute_format *fmt,
			 const int32_t *d_row_copy, long rows_padded, void *d_xe,
			 float *d_xe_scale, void *stream);
int permute_identity_experts_cuda(const struct permute_format *fmt, long rows,
				  const void *d_xe, const float *d_xe_scale, uint16_t *d_y,
				  void *stream);
int permute_reduce_cuda(const uint16_t *d_in, int hidden, const int32_t *d_idx,
			const float *d_w, int k, long n_out, uint16_t *d_out, void *stream);

/* Device memory for the callers that hold no CUDA headers (harness/parallel/ep.c). kind of a
 * copy: 0 host to device, 1 device to host, 2 device to device; copies are ordered on
 * stream and permute_cuda_sync waits for it. */
int permute_cuda_alloc(void **d_p, size_t bytes);
void permute_cuda_free(void *d_p);
int permute_cuda_copy(void *dst, const void *src, size_t bytes, int kind, void *stream);
int permute_cuda_sync(void *stream);

#ifdef __cplusplus
}
#endif

#endif
