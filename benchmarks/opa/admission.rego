# The webhook's managed-label + identity rule in Rego, for benchmarks.admission_load's OPA mode only.
#
# OPA answers POST / with data.system.main, given the raw AdmissionReview as input: the same body, client
# and TLS as driftwarden's /validate. What this policy can say: the object is managed (the driftwarden.io/app
# label and a tracking annotation on the old object), the requester is not the GitOps identity, and the spec
# changed. What it cannot say is which fields Git owns: that lives in managedFields (fieldsV1, a trie whose
# keys are JSON-encoded list keys), and Rego has no structural diff of two documents nor merge keys, so a
# change nobody in Git owns (a rollout-restart annotation, an added container) is denied here too.
package system

import rego.v1

gitops_identity := "system:serviceaccount:driftwarden-system:driftwarden-auditor"

req := input.request

managed if {
	req.oldObject.metadata.labels["driftwarden.io/app"]
	req.oldObject.metadata.annotations["driftwarden.io/tracking-id"]
}

violation if {
	req.operation == "UPDATE"
	managed
	req.userInfo.username != gitops_identity
	req.object.spec != req.oldObject.spec
}

response := {"uid": req.uid, "allowed": false, "status": {
	"code": 403, "reason": "Forbidden",
	"message": sprintf("%s/%s is managed by Git: change it in Git", [req.namespace, req.name]),
}} if violation

else := {"uid": req.uid, "allowed": true}

main := {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
