// One worker reads file[start, end): 'frs' = FileReaderSync.readAsArrayBuffer of slices,
// 'arraybuffer' = await slice.arrayBuffer(), 'stream' = the slice's ReadableStream with a
// BYOB reader into one reusable buffer of `slice` bytes (how the app's scan workers read;
// they use a 2 MiB buffer, bench.mjs measures 1 MiB).
// Every byte is touched once, as a scan would.
onmessage = async (e) => {
  const { file, mode, slice, start, end } = e.data;
  let bytes = 0, sum = 0;
  const touch = (u8) => { for (let i = 0; i < u8.length; i += 4096) sum += u8[i]; bytes += u8.length; };
  try {
    if (mode === 'stream') {
      const reader = file.slice(start, end).stream().getReader({ mode: 'byob' });
      let buf = new ArrayBuffer(slice);
      for (;;) {
        const { done, value } = await reader.read(new Uint8Array(buf, 0, slice));
        if (done) break;
        touch(value);
        buf = value.buffer;
      }
    } else {
      const frs = mode === 'frs' ? new FileReaderSync() : null;
      for (let o = start; o < end; o += slice) {
        const part = file.slice(o, Math.min(end, o + slice));
        touch(new Uint8Array(frs ? frs.readAsArrayBuffer(part) : await part.arrayBuffer()));
      }
    }
    postMessage({ bytes, sum });
  } catch (err) {
    postMessage({ error: String(err) });
  }
};
