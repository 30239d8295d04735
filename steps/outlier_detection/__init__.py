"""outlier_detection: flag cosmic rays and other outliers (jwst OutlierDetectionStep)."""
