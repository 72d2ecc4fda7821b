"""Development tools off the runtime path: the local control plane and Jaeger. Nothing at run time imports
this."""
