"""The 数据安全屋 controls each party enforces in its own domain: policy, firm
authorisations (consent), signing keys, audit trails, the output gate and
desensitisation."""
