"""What the Gradio app needs besides the service: render jobs, input helpers, plots."""
