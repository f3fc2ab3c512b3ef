// The widget's CSS, scoped under .wb-annotator (injected with the view, removed with it).
export const STYLE = `
.wb-annotator { font: 13px system-ui, sans-serif; outline: none; display: inline-block;
  border: 2px solid transparent; border-radius: 4px; padding: 4px; }
.wb-annotator:focus, .wb-annotator:focus-within { border-color: #4a90d9; }
.wb-annotator button { margin: 2px; padding: 2px 8px; border: 1px solid #999; border-radius: 3px;
  background: #f4f4f4; cursor: pointer; }
.wb-annotator button.wb-active { background: #cfe3ff; border-color: #4a90d9; }
.wb-annotator button.wb-primary { background: #2e7d32; color: #fff; border-color: #2e7d32; }
.wb-annotator select, .wb-annotator input[type=range] { margin: 2px; vertical-align: middle; }
.wb-status { font-weight: 600; margin: 2px 0 4px; min-height: 1.2em; }
.wb-message { min-height: 1.2em; color: #555; }
.wb-message.wb-error { color: #b00020; }
.wb-stage { position: relative; display: inline-block; line-height: 0; }
.wb-canvas { display: block; background: #000; cursor: crosshair; touch-action: none; }
.wb-help { position: absolute; inset: 8px; overflow: auto; background: rgba(255,255,255,0.95);
  padding: 8px 12px; line-height: 1.4; border-radius: 4px; }
.wb-help h3 { margin: 0 0 6px; }
.wb-help td { padding: 1px 8px 1px 0; vertical-align: top; }
.wb-help .wb-keys { font-family: monospace; white-space: nowrap; }
.wb-flag input { width: 100%; box-sizing: border-box; margin: 4px 0; }
`;
