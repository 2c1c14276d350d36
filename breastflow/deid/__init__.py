"""De-identification on the way in: DICOM PS3.15 Annex E basic profile, keyed pseudonyms, dates to offsets."""
