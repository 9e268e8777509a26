// RMSNorm and the hyper-connection Sinkhorn split (HOST_DEVICE scalar math shared by CPU and
// CUDA code). Reductions run in a fixed order per row, so results are batch-invariant.
//
// HcSplitSinkhorn follows the reference's hc_split_sinkhorn: from the (2 + hc) * hc mixing
// logits m of one token,
//   pre[i]     = sigmoid(m[i] * scale[0] + base[i]) + eps                  (hc values)
//   post[i]    = 2 * sigmoid(m[hc + i] * scale[1] + base[hc + i])         (hc values)
//   comb[j][k] = m[2hc + j*hc + k] * scale[2] + base[2hc + j*hc + k], then a row softmax + eps,
//                divided by (column sums + eps), then iters - 1 times: divided by (row sums +
//                eps), then by (column sums + eps).
#pragma once

#include <math.h>

#include "kernels/host_device.h"

namespace strata::kernels {

// y = x / sqrt(mean(x^2) + eps) * w, one row of n values.
STRATA_HD void RmsNormRow(const float* x, const float* w, float* y, int n, float eps) {
  float ss = 0.0f;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.0f / sqrtf(ss / float(n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
}

STRATA_HD float Sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// m: (2 + hc) * hc logits; pre, post: hc values each; comb: hc * hc (row-major).
STRATA_HD void HcSplitSinkhorn(const float* m, const float* scale, const float* base, int hc,
                               int iters, float eps, float* pre, float* post, float* comb) {
  for (int i = 0; i < hc; ++i) {
    pre[i] = Sigmoid(m[i] * scale[0] + base[i]) + eps;
    post[i] = 2.0f * Sigmoid(m[hc + i] * scale[1] + base[hc + i]);
  }
  for (int j = 0; j < hc; ++j) {
    float* row = comb + j * hc;
    float mx = -INFINITY;
    for (int k = 0; k < hc; ++k) {
      row[k] = m[2 * hc + j * hc + k] * scale[2] + base[2 * hc + j * hc + k];
      mx = fmaxf(mx, row[k]);
    }
    float sum = 0.0f;
    for (int k = 0; k < hc; ++k) sum += (row[k] = expf(row[k] - mx));
    for (int k = 0; k < hc; ++k) row[k] = row[k] / sum + eps;
  }
  auto divide_columns = [&]() {
    for (int k = 0; k < hc; ++k) {
      float s = 0.0f;
      for (int j = 0; j < hc; ++j) s += comb[j * hc + k];
      for (int j = 0; j < hc; ++j) comb[j * hc + k] /= s + eps;
    }
  };
  divide_columns();
  for (int it = 1; it < iters; ++it) {
    for (int j = 0; j < hc; ++j) {
      float s = 0.0f;
      for (int k = 0; k < hc; ++k) s += comb[j * hc + k];
      for (int k = 0; k < hc; ++k) comb[j * hc + k] /= s + eps;
    }
    divide_columns();
  }
}

}  // namespace strata::kernels
