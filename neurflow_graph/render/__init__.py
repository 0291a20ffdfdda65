"""Self-contained pages (HTML with inline SVG and base64 images, and PNG) of circuits and debugging results."""

from neurflow_graph.render.circuit import render_circuit_html, write_circuit_html
from neurflow_graph.render.screenshot import RenderError, find_chromium, screenshot

__all__ = ["RenderError", "find_chromium", "render_circuit_html", "screenshot", "write_circuit_html"]
