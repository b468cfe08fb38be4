// A runtime's compiled standard library, for a Pyodide that ships only sources (0.17.1, the offline test
// harness's; modern Pyodide ships its files compiled and needs none). The bundle (tests/browser/pycache.py
// makes it, in that same runtime) holds checked-hash pycs: Python hashes each source and compiles it again when
// the hash differs, so a bundle that does not match costs time, never changes what runs.
// Layout (little-endian): "MHSAPYC1", uint32 count, then per file uint32 path length, UTF-8 path, uint32 data
// length, the pyc bytes. Classic script: the harness page loads it with a <script>, the worker importScripts.
(function (self) {
  "use strict";
  var MAGIC = "MHSAPYC1";

  // Write the bundle's files into Emscripten's FS (each under its source's __pycache__); returns how many.
  self.mhsaWritePycache = function (FS, buffer) {
    var bytes = new Uint8Array(buffer);
    var view = new DataView(buffer);
    if (bytes.length < 12 || String.fromCharCode.apply(null, bytes.subarray(0, 8)) !== MAGIC) {
      throw new Error("not a pyc bundle");
    }
    var count = view.getUint32(8, true);
    var off = 12;
    var decoder = new TextDecoder();
    var made = {};
    for (var i = 0; i < count; i++) {
      var n = view.getUint32(off, true);
      var path = decoder.decode(bytes.subarray(off + 4, off + 4 + n));
      off += 4 + n;
      var size = view.getUint32(off, true);
      var dir = path.slice(0, path.lastIndexOf("/"));
      if (!made[dir]) { FS.mkdirTree(dir); made[dir] = true; }
      FS.writeFile(path, bytes.subarray(off + 4, off + 4 + size));
      off += 4 + size;
    }
    if (off !== bytes.length) throw new Error("trailing bytes in the pyc bundle");
    return count;
  };

  // Fetch a bundle: a Promise of its ArrayBuffer, or null (with a console note) when it cannot be had: the
  // interpreter then compiles the sources, as it would without one.
  self.mhsaFetchPycache = function (url) {
    if (!url) return Promise.resolve(null);
    return fetch(url).then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.arrayBuffer();
    }).catch(function (err) {
      console.warn("no compiled standard library (" + url + "): " + (err && err.message || err));
      return null;
    });
  };
})(self);
