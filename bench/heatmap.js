// Shared by both benchmark pages: the cheapest faithful heatmap of a head-averaged (n, n) attention matrix.
// One ImageData of n x n pixels (white -> blue), scaled by the canvas with nearest-neighbour: one putImageData
// + one drawImage.
export function drawHeatmap(canvas, probs, n) {
  const img = new ImageData(n, n);
  const px = img.data;
  for (let i = 0; i < n * n; i++) {
    const v = Math.max(0, Math.min(1, probs[i]));
    px[4 * i] = 255 - 222 * v; px[4 * i + 1] = 255 - 165 * v; px[4 * i + 2] = 255 - 75 * v; px[4 * i + 3] = 255;
  }
  const ctx = canvas.getContext("2d");
  const off = new OffscreenCanvas(n, n);
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
