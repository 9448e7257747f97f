"""The parts of the hover report: compact columns, Bokeh figures, their JavaScript, the page."""
