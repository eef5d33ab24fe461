# The club's recipe for adding a metric, verbatim.
from prometheus_client import Counter, Histogram, Gauge

# 지표 정의
MY_METRIC = Counter('my_metric_total', 'Description', ['label1', 'label2'])

# 코드에서 사용
MY_METRIC.labels(label1='value1', label2='value2').inc()
