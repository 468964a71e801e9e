// celcheck evaluates a ValidatingAdmissionPolicy against objects with the Kubernetes API
// server's own code (k8s.io/apiserver's validating admission policy plugin: its CEL
// environment, composition of variables, matchConditions, validations and messageExpressions,
// cost budget), without an API server.
//
// Usage:
//
//	celcheck [-new-expressions-version 1.29] POLICY.yaml < cases.json
//
// POLICY.yaml holds the ValidatingAdmissionPolicy (other documents are ignored). Standard
// input is a JSON list of cases, {"object": {...}, "oldObject": {...} or null, "operation":
// "CREATE" | "UPDATE"}; standard output a JSON list of results in the same order,
// {"matched": bool, "denied": [{"message": "...", "error": bool}]}: matched is false when the
// policy's resource rules or matchConditions leave the object alone; error is true when a
// validation failed to evaluate (the failurePolicy decides then) rather than evaluating to
// false.
//
// Before any case, every expression is compiled as the API server compiles a policy it is
// asked to create, in the environment of -new-expressions-version (a server of version N
// admits new expressions only with the libraries of N-1), and as it evaluates stored ones;
// a compile error is printed and the exit status is 2.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
)

type kindInfo struct {
	gvk     schema.GroupVersionKind
	gvr     schema.GroupVersionResource
	newObj  func() runtime.Object
	cluster bool
}

var kinds = map[string]kindInfo{
	"apps/v1/Deployment": {
		gvk:    appsv1.SchemeGroupVersion.WithKind("Deployment"),
		gvr:    appsv1.SchemeGroupVersion.WithResource("deployments"),
		newObj: func() runtime.Object { return &appsv1.Deployment{} },
	},
	"batch/v1/Job": {
		gvk:    batchv1.SchemeGroupVersion.WithKind("Job"),
		gvr:    batchv1.SchemeGroupVersion.WithResource("jobs"),
		newObj: func() runtime.Object { return &batchv1.Job{} },
	},
	"batch/v1/CronJob": {
		gvk:    batchv1.SchemeGroupVersion.WithKind("CronJob"),
		gvr:    batchv1.SchemeGroupVersion.WithResource("cronjobs"),
		newObj: func() runtime.Object { return &batchv1.CronJob{} },
	},
	"v1/Pod": {
		gvk:    corev1.SchemeGroupVersion.WithKind("Pod"),
		gvr:    corev1.SchemeGroupVersion.WithResource("pods"),
		newObj: func() runtime.Object { return &corev1.Pod{} },
	},
}

type testCase struct {
	Object    json.RawMessage `json:"object"`
	OldObject json.RawMessage `json:"oldObject"`
	Operation string          `json:"operation"`
}

type denial struct {
	Message string `json:"message"`
	Error   bool   `json:"error"`
}

type result struct {
	Matched bool     `json:"matched"`
	Denied  []denial `json:"denied"`
}

func main() {
	newVersion := flag.String("new-expressions-version", "1.29",
		"compile every expression as a new one in this CEL environment version too")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: celcheck [-new-expressions-version X.Y] POLICY.yaml < cases.json")
		os.Exit(64)
	}
	policy, err := readPolicy(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	compat, err := version.ParseMajorMinor(*newVersion)
	if err != nil {
		fail(err)
	}
	if problems := compileProblems(policy, compat); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, p)
		}
		os.Exit(2)
	}
	validator := compilePolicy(policy)
	if err := validator.CompileError(); err != nil {
		fmt.Fprintln(os.Stderr, "compile:", err)
		os.Exit(2)
	}
	var cases []testCase
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		fail(fmt.Errorf("cases: %w", err))
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		r, err := evaluate(policy, validator, c)
		if err != nil {
			fail(fmt.Errorf("case %d: %w", i, err))
		}
		results[i] = r
	}
	out, _ := json.Marshal(results)
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "celcheck:", err)
	os.Exit(1)
}

func readPolicy(path string) (*admissionv1.ValidatingAdmissionPolicy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	decoder := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var raw map[string]any
		if err := decoder.Decode(&raw); err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%s: no ValidatingAdmissionPolicy", path)
			}
			return nil, err
		}
		if raw["kind"] != "ValidatingAdmissionPolicy" {
			continue
		}
		text, _ := json.Marshal(raw)
		policy := &admissionv1.ValidatingAdmissionPolicy{}
		decoder := json.NewDecoder(strings.NewReader(string(text)))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(policy); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return policy, nil
	}
}

// compileProblems compiles every expression as the API server does when a policy is
// created (environment.NewExpressions, at compat) and when it is evaluated (StoredExpressions).
func compileProblems(policy *admissionv1.ValidatingAdmissionPolicy, compat *version.Version) []string {
	var problems []string
	for _, mode := range []environment.Type{environment.NewExpressions, environment.StoredExpressions} {
		envSet := environment.MustBaseEnvSet(compat)
		if mode == environment.StoredExpressions {
			envSet = environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
		}
		compiler, err := cel.NewCompositedCompiler(envSet)
		if err != nil {
			return []string{err.Error()}
		}
		withAuthz := cel.OptionalVariableDeclarations{HasParams: policy.Spec.ParamKind != nil, HasAuthorizer: true}
		noAuthz := withAuthz
		noAuthz.HasAuthorizer = false
		where := fmt.Sprintf("(%s, CEL environment %s)", modeName(mode), envVersion(mode, compat))
		for _, v := range policy.Spec.Variables {
			r := compiler.CompileAndStoreVariable(&validating.Variable{Name: v.Name, Expression: v.Expression}, withAuthz, mode)
			if r.Error != nil {
				problems = append(problems, fmt.Sprintf("variables %s %s: %v", v.Name, where, r.Error))
			}
		}
		check := func(what string, e cel.ExpressionAccessor, opts cel.OptionalVariableDeclarations) {
			r := compiler.CompileCELExpression(e, opts, mode)
			if r.Error != nil {
				problems = append(problems, fmt.Sprintf("%s %s: %v", what, where, r.Error))
			}
		}
		for i := range policy.Spec.MatchConditions {
			mc := policy.Spec.MatchConditions[i]
			check("matchConditions "+mc.Name, (*matchconditions.MatchCondition)(&mc), withAuthz)
		}
		for i, v := range policy.Spec.Validations {
			check(fmt.Sprintf("validations[%d].expression", i), &validating.ValidationCondition{Expression: v.Expression}, withAuthz)
			if v.MessageExpression != "" {
				check(fmt.Sprintf("validations[%d].messageExpression", i), &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}, noAuthz)
			}
		}
	}
	return problems
}

func modeName(mode environment.Type) string {
	if mode == environment.NewExpressions {
		return "as a new policy"
	}
	return "as a stored policy"
}

func envVersion(mode environment.Type, compat *version.Version) string {
	if mode == environment.NewExpressions {
		return compat.String()
	}
	return environment.DefaultCompatibilityVersion().String()
}

// compilePolicy is k8s.io/apiserver's validating.compilePolicy (unexported there), line for line.
func compilePolicy(policy *admissionv1.ValidatingAdmissionPolicy) validating.Validator {
	hasParam := policy.Spec.ParamKind != nil
	optionalVars := cel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: true}
	expressionOptionalVars := cel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: false}
	failurePolicy := policy.Spec.FailurePolicy
	var matcher matchconditions.Matcher
	filterCompiler, err := cel.NewCompositedCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	if err != nil {
		return validating.NewValidator(nil, nil, nil, nil, failurePolicy, err)
	}
	variables := make([]cel.NamedExpressionAccessor, len(policy.Spec.Variables))
	for i, v := range policy.Spec.Variables {
		variables[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	filterCompiler.CompileAndStoreVariables(variables, optionalVars, environment.StoredExpressions)
	if len(policy.Spec.MatchConditions) > 0 {
		accessors := make([]cel.ExpressionAccessor, len(policy.Spec.MatchConditions))
		for i := range policy.Spec.MatchConditions {
			accessors[i] = (*matchconditions.MatchCondition)(&policy.Spec.MatchConditions[i])
		}
		matcher = matchconditions.NewMatcher(filterCompiler.CompileCondition(accessors, optionalVars, environment.StoredExpressions), failurePolicy, "policy", "validate", policy.Name)
	}
	validations := make([]cel.ExpressionAccessor, len(policy.Spec.Validations))
	messages := make([]cel.ExpressionAccessor, len(policy.Spec.Validations))
	for i, v := range policy.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	return validating.NewValidator(
		filterCompiler.CompileCondition(validations, optionalVars, environment.StoredExpressions),
		matcher,
		filterCompiler.CompileCondition(nil, optionalVars, environment.StoredExpressions),
		filterCompiler.CompileCondition(messages, expressionOptionalVars, environment.StoredExpressions),
		failurePolicy,
		nil,
	)
}

func decode(raw json.RawMessage) (runtime.Object, kindInfo, error) {
	var meta metav1.TypeMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, kindInfo{}, err
	}
	info, ok := kinds[meta.APIVersion+"/"+meta.Kind]
	if !ok {
		return nil, kindInfo{}, fmt.Errorf("unsupported kind %s %s", meta.APIVersion, meta.Kind)
	}
	obj := info.newObj()
	// As the API server decodes a request: into the typed object (an annotation that is not a
	// string is refused here, as there), then to the CEL value from that.
	decoder := json.NewDecoder(strings.NewReader(string(raw)))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(obj); err != nil {
		return nil, kindInfo{}, err
	}
	obj.GetObjectKind().SetGroupVersionKind(info.gvk)
	return obj, info, nil
}

// matches applies the policy's matchConstraints.resourceRules (groups, versions, resources,
// operations; "*" as the API server reads it). Namespace and object selectors are not used.
func matches(policy *admissionv1.ValidatingAdmissionPolicy, gvr schema.GroupVersionResource, op admission.Operation) bool {
	constraints := policy.Spec.MatchConstraints
	if constraints == nil {
		return false
	}
	has := func(list []string, want string) bool {
		for _, s := range list {
			if s == "*" || s == want {
				return true
			}
		}
		return false
	}
	for _, rule := range constraints.ResourceRules {
		ops := make([]string, len(rule.Operations))
		for i, o := range rule.Operations {
			ops[i] = string(o)
		}
		if has(rule.APIGroups, gvr.Group) && has(rule.APIVersions, gvr.Version) &&
			has(rule.Resources, gvr.Resource) && has(ops, string(op)) {
			return true
		}
	}
	return false
}

func evaluate(policy *admissionv1.ValidatingAdmissionPolicy, v validating.Validator, c testCase) (result, error) {
	obj, info, err := decode(c.Object)
	if err != nil {
		return result{}, err
	}
	var old runtime.Object
	if len(c.OldObject) > 0 && string(c.OldObject) != "null" {
		if old, _, err = decode(c.OldObject); err != nil {
			return result{}, err
		}
	}
	op := admission.Operation(c.Operation)
	if op == "" {
		op = admission.Create
	}
	if !matches(policy, info.gvr, op) {
		return result{Denied: []denial{}}, nil
	}
	accessor, err := metaAccessor(obj)
	if err != nil {
		return result{}, err
	}
	namespace := accessor.GetNamespace()
	if namespace == "" {
		namespace = "default"
	}
	attrs := admission.NewAttributesRecord(obj, old, info.gvk, namespace, accessor.GetName(), info.gvr, "", op, nil, false, &user.DefaultInfo{Name: "celcheck"})
	versioned := &admission.VersionedAttributes{
		Attributes:         attrs,
		VersionedObject:    admission.NewLazyObject(obj),
		VersionedOldObject: admission.NewLazyObject(old),
		VersionedKind:      info.gvk,
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	res := v.Validate(context.Background(), info.gvr, versioned, nil, ns, celconfig.RuntimeCELCostBudget, nil)
	out := result{Matched: true, Denied: []denial{}}
	if len(res.Decisions) == 0 && len(policy.Spec.Validations) > 0 {
		out.Matched = false // the matchConditions left it alone
	}
	for _, d := range res.Decisions {
		switch {
		case d.Evaluation == validating.EvalError:
			out.Denied = append(out.Denied, denial{Message: d.Message, Error: true})
		case d.Action == validating.ActionDeny:
			out.Denied = append(out.Denied, denial{Message: d.Message})
		}
	}
	return out, nil
}

func metaAccessor(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}
