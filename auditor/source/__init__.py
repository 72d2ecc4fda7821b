"""Git and rendering: resolve an Application's revision, export its tree, render manifests."""
