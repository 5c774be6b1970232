// Read the chosen file once with `workers` workers, each reading its own contiguous part.
window.readAll = (mode, slice, workers) => new Promise((resolve, reject) => {
  const file = document.getElementById('file').files[0];
  const per = Math.ceil(file.size / workers / slice) * slice;
  let left = workers, bytes = 0;
  const t0 = performance.now();
  for (let i = 0; i < workers; i++) {
    const w = new Worker('read.js');
    w.onerror = (e) => reject(new Error(e.message));
    w.onmessage = (e) => {
      w.terminate();
      if (e.data.error) { reject(new Error(e.data.error)); return; }
      bytes += e.data.bytes;
      if (--left === 0) resolve({ bytes, ms: performance.now() - t0 });
    };
    w.postMessage({ file, mode, slice, start: Math.min(file.size, i * per), end: Math.min(file.size, (i + 1) * per) });
  }
});
