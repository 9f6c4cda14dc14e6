//! Kubernetes client: kubeconfig, pagination, retries, error mapping.
