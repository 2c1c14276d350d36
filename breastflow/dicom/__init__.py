"""Reading scanner DICOM: discovery, grouping into studies/series, series classification and validated volumes."""
