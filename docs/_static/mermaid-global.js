// sphinxcontrib-mermaid imports Mermaid as an ES module; the site serves Mermaid's
// classic browser bundle instead (loaded by a <script> tag before any module runs),
// which sets globalThis.mermaid. This module hands that object over.
const mermaid = globalThis.mermaid;
if (mermaid === undefined) {
  throw new Error("Mermaid's bundle (_static/vendor/mermaid-*.min.js) did not load.");
}
export default mermaid;
