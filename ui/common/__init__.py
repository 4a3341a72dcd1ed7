"""Small helpers shared by the workbench's widgets."""
