"""Synthetic-data metrics: paired (MSE, MAE, PSNR, SSIM, MS-SSIM, LPIPS), Frechet distances over registered extractors, diversity, privacy, fairness, kinetics."""
