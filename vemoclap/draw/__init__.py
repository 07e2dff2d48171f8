"""Pictures of a Result: boxes and labels drawn onto frames (:mod:`.overlay`) and matplotlib
figures (:mod:`.figures`)."""
